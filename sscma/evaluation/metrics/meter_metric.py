"""Keypoint accuracy (NME, PCK) and analog-meter reading error."""
import math
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from sscma.registry import METRICS

TWO_PI = 2 * math.pi


def _np(x) -> np.ndarray:
    if hasattr(x, 'detach'):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def readings_from_keypoints(kpts, clockwise: bool = True, clip: bool = True) -> np.ndarray:
    """Vectorised :func:`reading_from_keypoints`: ``(..., 4, 2)`` -> ``(...)``."""
    k = _np(kpts)
    c, tip, start, end = k[..., 0, :], k[..., 1, :], k[..., 2, :], k[..., 3, :]

    def angle(p):
        return np.arctan2(p[..., 1] - c[..., 1], p[..., 0] - c[..., 0])

    sign = 1.0 if clockwise else -1.0
    sweep = np.mod(sign * (angle(end) - angle(start)), TWO_PI)
    sweep = np.where(sweep < 1e-9, TWO_PI, sweep)  # start == end: a full-circle dial
    rel = np.mod(sign * (angle(tip) - angle(start)), TWO_PI)
    # a needle in the dead zone between end and start reads past the nearer end
    below = (rel > sweep) & (TWO_PI - rel < rel - sweep)
    rel = np.where(below, rel - TWO_PI, rel)
    reading = rel / sweep
    return np.clip(reading, 0.0, 1.0) if clip else reading


def reading_from_keypoints(kpts, clockwise: bool = True, clip: bool = True) -> float:
    """The reading of a meter, as a fraction of full scale, from its keypoints.

    ``kpts`` is ``(4, 2)`` (x, y image pixels, y pointing down): dial centre, needle tip, scale start, scale
    end. The reading is the angle of (tip - centre) measured from (start - centre), over the sweep angle of
    the scale from start to end, both measured in the scale's direction: clockwise on screen by default
    (``clockwise=False`` for scales that increase counter-clockwise). Start == end means a full-circle scale.
    A needle in the dead zone (past the end or before the start) reads past the nearer end: >1 or <0, which
    ``clip`` (default) clamps to [0, 1].
    """
    return float(readings_from_keypoints(_np(kpts).reshape(4, 2), clockwise, clip))


@METRICS.register_module()
class MeterMetric(BaseMetric):
    """NME, PCK and meter reading error of keypoint predictions, all in percent.

    - ``nme``: mean distance between predicted and true keypoints over the image's longer side (original
      image pixels), visible keypoints only; ``nme_<name>`` per keypoint; ``nme_dial``: the same distances
      over the scale diameter (twice the mean distance of scale start / end from the centre).
    - ``pck@0.05``: keypoints closer than ``pck_thr`` (0.05) of the image's longer side.
    - ``reading_err_median`` / ``_mean`` / ``_p90``: ``|reading(pred) - reading(gt)|`` in % of full scale
      (:func:`reading_from_keypoints`, both from keypoints), over images whose 4 reading keypoints are
      all visible; ``reading_within_<t>``: % of those images read within ``t`` % FS.

    Args:
        reading_keypoints (Sequence[int | str]): centre, needle tip, scale start, scale end, as indices or
            names of the dataset's ``keypoint_names``. Defaults to (0, 1, 2, 3).
        clockwise (bool): Scales increase clockwise on screen. Defaults to True.
        pck_thr (float): PCK threshold as a fraction of the image's longer side. Defaults to 0.05.
        within (Sequence[float]): Reading tolerances (% FS) for ``reading_within_<t>``. Defaults to (2, 5).
        prefix (str, optional): Key prefix. Defaults to ``'meter'``.
    """
    default_prefix = 'meter'

    def __init__(self, reading_keypoints: Sequence[Union[int, str]] = (0, 1, 2, 3), clockwise: bool = True,
                 pck_thr: float = 0.05, within: Sequence[float] = (2, 5), collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if len(reading_keypoints) != 4:
            raise ValueError(f'reading_keypoints={reading_keypoints!r}: expected 4 (centre, tip, start, end)')
        self.reading_keypoints = list(reading_keypoints)
        self.clockwise = clockwise
        self.pck_thr = pck_thr
        self.within = tuple(within)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            pred = _np(sample['pred_instances']['keypoints']).reshape(-1, 2)
            gt_inst = sample['gt_instances']
            scale = np.asarray(sample.get('scale_factor', (1.0, 1.0))[:2], dtype=np.float64)
            gt = _np(gt_inst['keypoints']).reshape(-1, 2)[:len(pred)] / scale
            vis = gt_inst.get('keypoints_visible') if hasattr(gt_inst, 'get') else None
            vis = np.ones(len(gt)) if vis is None else _np(vis).reshape(-1)[:len(gt)]
            h, w = sample.get('ori_shape', sample.get('img_shape'))[:2]
            self.results.append(dict(pred=pred, gt=gt, vis=vis > 0, size=float(max(h, w))))

    def _reading_indices(self, num_keypoints: int) -> Optional[List[int]]:
        names = list((self.dataset_meta or {}).get('keypoint_names') or [])
        idx = []
        for k in self.reading_keypoints:
            if isinstance(k, str):
                if k not in names:
                    return None
                k = names.index(k)
            if not 0 <= int(k) < num_keypoints:
                return None
            idx.append(int(k))
        return idx

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        pred = np.stack([r['pred'] for r in results])
        gt = np.stack([r['gt'] for r in results])
        vis = np.stack([r['vis'] for r in results])
        size = np.array([r['size'] for r in results])
        dist = np.linalg.norm(pred - gt, axis=-1)  # (N, K)
        rel = dist / size[:, None]
        metrics: Dict[str, float] = {}
        idx = self._reading_indices(gt.shape[1])
        if idx is not None:
            ok = vis[:, idx].all(1)
            if ok.any():
                err = np.abs(readings_from_keypoints(pred[ok][:, idx], self.clockwise) -
                             readings_from_keypoints(gt[ok][:, idx], self.clockwise)) * 100
                metrics['reading_err_median'] = float(np.median(err))
                metrics['reading_err_mean'] = float(err.mean())
                metrics['reading_err_p90'] = float(np.percentile(err, 90))
                for t in self.within:
                    metrics[f'reading_within_{t:g}'] = float((err <= t).mean() * 100)
        else:
            MMLogger.get_current_instance().warning(
                f'MeterMetric: reading_keypoints={self.reading_keypoints} do not name 4 keypoints of this dataset; '
                'no reading error')
        metrics['nme'] = float(rel[vis].mean() * 100) if vis.any() else float('nan')
        metrics['pck@0.05' if self.pck_thr == 0.05 else f'pck@{self.pck_thr:g}'] = float(
            (rel[vis] < self.pck_thr).mean() * 100) if vis.any() else float('nan')
        if idx is not None:
            c, s, e = gt[:, idx[0]], gt[:, idx[2]], gt[:, idx[3]]
            diameter = np.linalg.norm(s - c, axis=-1) + np.linalg.norm(e - c, axis=-1)
            good = vis[:, [idx[0], idx[2], idx[3]]].all(1) & (diameter > 0)
            v = vis & good[:, None]
            if v.any():
                metrics['nme_dial'] = float((dist / np.where(good, diameter, 1.0)[:, None])[v].mean() * 100)
        names = list((self.dataset_meta or {}).get('keypoint_names') or [])
        for k in range(gt.shape[1]):
            if vis[:, k].any():
                name = names[k] if k < len(names) else str(k)
                metrics[f'nme_{name}'] = float(rel[:, k][vis[:, k]].mean() * 100)
        return metrics
