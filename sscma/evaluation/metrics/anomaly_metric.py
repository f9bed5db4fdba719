"""Image and pixel measures of an anomaly detector, with anomalib's definitions.

- ``image_auroc``: area under the ROC curve of the image scores (anomalous = positive).
- ``pixel_auroc``: the same over every pixel of every image, the anomaly map resized (bilinear) to the image's
  original size and compared with its mask (a normal image: no defective pixel).
- ``aupro``: area under the per-region-overlap curve up to a false-positive rate of 0.3, divided by 0.3
  (Bergmann et al., MVTec-AD, 2021; anomalib's ``AUPRO`` with ``fpr_limit=0.3``). Regions are the 8-connected
  components of each mask; each region weighs the same whatever its size.
- ``f1``, ``precision``, ``recall``: image decisions ``score >= 1.0`` (the model's map is divided by its stored
  threshold).

:func:`calibrate_threshold` picks that threshold (:class:`~sscma.engine.hooks.AnomalyThresholdHook` runs it on
the validation images before the checkpoint is saved): with anomalies among them, the best-F1 threshold
(anomalib's ``F1AdaptiveThreshold``), placed halfway between the lowest score it flags and the highest one it
does not; with normal images only, the ``1 - target_fpr`` quantile of their scores.
"""
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from sscma.registry import METRICS
from sscma.utils.errors import DatasetError

FPR_LIMIT = 0.3


def image_auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC (ties count half); NaN when ``labels`` holds one class only."""
    from sklearn.metrics import roc_auc_score
    labels = np.asarray(labels).astype(bool)
    if labels.all() or not labels.any():
        return float('nan')
    return float(roc_auc_score(labels, np.asarray(scores, dtype=np.float64)))


def aupro(masks: Sequence[np.ndarray], maps: Sequence[np.ndarray], fpr_limit: float = FPR_LIMIT) -> float:
    """Normalised area under the per-region-overlap curve up to ``fpr_limit`` (NaN without any region).

    The PRO at a threshold is the mean, over the masks' connected regions, of the part of the region at or above
    it; the false-positive rate is over the pixels outside every mask. Both are one weighted ROC curve: region
    pixels weigh ``1 / (region size x regions)``, which sklearn's ``roc_curve`` computes exactly, ties included.
    """
    from sklearn.metrics import roc_curve
    labels, weights, scores = [], [], []
    regions = 0
    parts = []
    for mask, amap in zip(masks, maps):
        n, comp = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
        parts.append((comp, amap))
        regions += n - 1
    if not regions:
        return float('nan')
    negatives = sum(int((comp == 0).sum()) for comp, _ in parts)
    if not negatives:
        return float('nan')
    for comp, amap in parts:
        flat, values = comp.reshape(-1), amap.reshape(-1).astype(np.float64)
        sizes = np.bincount(flat)
        positive = flat > 0
        labels.append(positive)
        weights.append(np.where(positive, 1.0 / (sizes[flat] * regions), 1.0 / negatives))
        scores.append(values)
    fpr, pro, _ = roc_curve(np.concatenate(labels), np.concatenate(scores), sample_weight=np.concatenate(weights),
                            drop_intermediate=False)
    keep = fpr <= fpr_limit
    f, p = fpr[keep], pro[keep]
    if f[-1] < fpr_limit:  # the curve's value at the limit, by linear interpolation as anomalib does
        i = int(np.searchsorted(fpr, fpr_limit))
        t = (fpr_limit - fpr[i - 1]) / (fpr[i] - fpr[i - 1])
        f = np.append(f, fpr_limit)
        p = np.append(p, pro[i - 1] + t * (pro[i] - pro[i - 1]))
    return float(np.trapz(p, f) / fpr_limit)


def calibrate_threshold(labels: np.ndarray, scores: np.ndarray, target_fpr: float = 0.05) -> Tuple[float, str]:
    """``(threshold, how)``: best-F1 threshold with anomalies present, else the normal scores' quantile."""
    labels, scores = np.asarray(labels).astype(bool), np.asarray(scores, dtype=np.float64)
    if not labels.any():
        return float(np.quantile(scores, 1.0 - target_fpr)), f'{1 - target_fpr:g} quantile of normal scores'
    if labels.all():
        return float(scores.min()), 'lowest score (anomalous images only)'
    order = np.sort(np.unique(scores))[::-1]
    best, best_f1 = order[0], -1.0
    for t in order:  # every distinct score as the lowest one flagged
        f1 = _f1(labels, scores >= t)
        if f1 > best_f1:
            best, best_f1 = t, f1
    below = scores[scores < best]
    threshold = (best + below.max()) / 2 if below.size else best
    return float(threshold), 'best F1'


def _f1(labels: np.ndarray, flagged: np.ndarray) -> float:
    tp = float((labels & flagged).sum())
    return 2 * tp / max(float(labels.sum() + flagged.sum()), 1.0)


def read_mask(path: str, shape: Tuple[int, int]) -> np.ndarray:
    """A mask file as bool ``(H, W)`` (non-zero = defect); ``shape`` is the image's, which it must match."""
    mask = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise DatasetError(f'{path}: cannot read this mask image')
    if mask.shape != tuple(shape):
        raise DatasetError(f'{path}: mask is {mask.shape[1]}x{mask.shape[0]} but its image is {shape[1]}x{shape[0]} '
                           '(width x height): a mask must have its image\'s size')
    return mask > 0


def map_to_image(amap: np.ndarray, shape: Tuple[int, int]) -> np.ndarray:
    """The cell map resized (bilinear, cell centres kept) to an image of ``shape`` ``(H, W)``."""
    return cv2.resize(np.asarray(amap, dtype=np.float32), (int(shape[1]), int(shape[0])),
                      interpolation=cv2.INTER_LINEAR)


@METRICS.register_module()
class AnomalyMetric(BaseMetric):
    """``image_auroc``, ``pixel_auroc`` and ``aupro`` (when every anomalous image has a mask), ``f1``,
    ``precision``, ``recall`` at the stored threshold (module docstring).

    Args:
        max_side (int): Pixel measures are computed at the original resolution, or at this longer side when an
            image is larger (mask resized by nearest neighbour). Defaults to 512.
    """
    default_prefix = 'anomaly'

    def __init__(self, max_side: int = 512, **kwargs) -> None:
        super().__init__(**kwargs)
        self.max_side = int(max_side)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for s in data_samples:
            label = s.get('gt_label')
            label = int(np.asarray(label.cpu() if hasattr(label, 'cpu') else label).reshape(-1)[0])
            amap = s['anomaly_map']
            self.results.append(dict(label=label, score=float(s['anomaly_score']),
                                     map=np.asarray(amap.cpu() if hasattr(amap, 'cpu') else amap, np.float32),
                                     mask_path=s.get('mask_path', ''), ori_shape=tuple(s['ori_shape'][:2])))

    def _pixels(self, results: List[dict]) -> Tuple[List[np.ndarray], List[np.ndarray]]:
        masks, maps = [], []
        for r in results:
            h, w = r['ori_shape']
            mask = read_mask(r['mask_path'], (h, w)) if r['mask_path'] else np.zeros((h, w), bool)
            scale = min(1.0, self.max_side / max(h, w))
            if scale < 1.0:
                h, w = max(1, round(h * scale)), max(1, round(w * scale))
                mask = cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
            masks.append(mask)
            maps.append(map_to_image(r['map'], (h, w)))
        return masks, maps

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        logger = MMLogger.get_current_instance()
        labels = np.array([r['label'] for r in results], dtype=bool)
        scores = np.array([r['score'] for r in results], dtype=np.float64)
        out: Dict[str, float] = dict(image_auroc=image_auroc(labels, scores))
        if not labels.any() or labels.all():
            logger.warning(f'anomaly metric: {int(labels.sum())} anomalous and {int((~labels).sum())} normal images: '
                           'AUROC needs both (reported as NaN)')
        flagged = scores >= 1.0
        tp = float((labels & flagged).sum())
        out.update(f1=_f1(labels, flagged), precision=tp / max(float(flagged.sum()), 1.0),
                   recall=tp / max(float(labels.sum()), 1.0))
        with_mask = [r for r in results if r['label'] and r['mask_path']]
        if labels.any() and len(with_mask) == int(labels.sum()):
            masks, maps = self._pixels(results)
            out['pixel_auroc'] = image_auroc(np.concatenate([m.reshape(-1) for m in masks]),
                                             np.concatenate([m.reshape(-1) for m in maps]))
            out['aupro'] = aupro(masks, maps)
        elif with_mask:
            logger.warning(f'anomaly metric: {len(with_mask)} of {int(labels.sum())} anomalous images have masks: '
                           'pixel AUROC and AUPRO need all of them and are left out')
        return out

