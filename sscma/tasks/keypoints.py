"""Keypoint regressors (PFLD): normalised coordinates out, scaled to the image outside the graph."""
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from sscma.registry import TASKS

from .base import Task, as_numpy


def meter_reading_indices(meta: Optional[dict]) -> Optional[List[int]]:
    """Indices of the meter's ``center``, ``needle_tip``, ``scale_start`` and ``scale_end`` among
    ``meta['keypoint_names']``, or ``None`` when the keypoints are not a meter's."""
    from sscma.datasets.meter_builtin import METER_KEYPOINTS
    names = list((meta or {}).get('keypoint_names') or [])
    wanted = list(METER_KEYPOINTS)
    return [names.index(n) for n in wanted] if set(wanted) <= set(names) else None


@TASKS.register_module('KeypointRegressor')
class KeypointTask(Task):
    """The graph gives ``(B, 2K)`` keypoints in [0, 1] of the input; ``KeypointRegressor.add_pred_to_datasample``
    scales them to the image.

    Parity: distance between the exported file's and PyTorch's keypoints, in input pixels (mean and max).
    """
    task = 'keypoints'
    postprocessing = ('outside the graph: multiply by the image size (KeypointRegressor.add_pred_to_datasample)')
    parity_columns = (('keypoint distance mean (px)', 'keypoint_distance_mean', 'number'),
                      ('keypoint distance max (px)', 'keypoint_distance_max', 'number'))

    geometric_fields = ('keypoints', )

    def output_meaning(self, model: nn.Module) -> str:
        return 'keypoints (x0, y0, x1, y1, ...) in [0, 1] of the input width / height'

    def record(self, sample: Any, meta: Dict[str, Any]) -> Dict[str, Any]:
        """``keypoints`` ([x, y] in original-image pixels), their names, and for a meter its ``reading`` in %
        of full scale."""
        kpts = as_numpy(sample.pred_instances.keypoints).astype(np.float64).reshape(-1, 2)
        out: Dict[str, Any] = dict(keypoints=np.round(kpts, 3).tolist())
        names = list((meta or {}).get('keypoint_names') or [])
        if len(names) == len(kpts):
            out['keypoint_names'] = names
        idx = meter_reading_indices(meta)
        if idx and max(idx) < len(kpts):
            from sscma.evaluation.metrics.meter_metric import reading_from_keypoints
            out['reading'] = round(reading_from_keypoints(kpts[idx]) * 100, 3)
        return out

    def draw(self, image: np.ndarray, sample: Any, meta: Dict[str, Any], size: int, score_thr: float = 0.0,
             truth: bool = True) -> Optional[np.ndarray]:
        """True keypoints (white rings; network-input pixels divided by ``scale_factor``) and predicted ones
        (coloured dots, original pixels), the meter reading as caption when the keypoints are a meter's."""
        from sscma.evaluation.metrics.meter_metric import reading_from_keypoints
        from sscma.visualization.drawing import draw_keypoints
        if 'pred_instances' not in sample or 'keypoints' not in sample.pred_instances:
            return None
        pred = as_numpy(sample.pred_instances.keypoints).astype(np.float64).reshape(-1, 2)
        scale = np.asarray(sample.metainfo.get('scale_factor', (1.0, 1.0))[:2], dtype=np.float64)
        gt_inst = sample.get('gt_instances') if truth else None
        if gt_inst is not None and 'keypoints' in gt_inst:
            gt = as_numpy(gt_inst.keypoints).astype(np.float64).reshape(-1, 2) / scale  # network -> image pixels
            v = gt_inst.get('keypoints_visible')
            vis = None if v is None else as_numpy(v).reshape(-1)
        else:
            gt, vis = np.zeros((0, 2)), None
        text = ''
        idx = meter_reading_indices(meta)
        link = (idx[0], idx[1]) if idx else ()
        if idx and max(idx) < len(pred):
            text = f'{reading_from_keypoints(pred[idx]) * 100:.0f}%'
            if max(idx) < len(gt) and (vis is None or (vis[idx] > 0).all()):
                text += f' (gt {reading_from_keypoints(gt[idx]) * 100:.0f}%)'
        return draw_keypoints(image, gt, pred, vis, text, size=size, link=link)

    def postprocess(self, model: nn.Module, outputs: torch.Tensor, data_samples: List) -> List:
        return model.add_pred_to_datasample(outputs.reshape(outputs.shape[0], -1, 2), data_samples)

    def parity(self, model: nn.Module, outputs: Sequence[torch.Tensor], references: Sequence[torch.Tensor],
               input_hw: Tuple[int, int]) -> Dict[str, Any]:
        size = torch.tensor([input_hw[1], input_hw[0]], dtype=torch.float32)
        dist = torch.cat([((o.reshape(o.shape[0], -1, 2) - r.reshape(r.shape[0], -1, 2)) * size).norm(dim=-1).flatten()
                          for o, r in zip(outputs, references)])
        return dict(keypoint_distance_mean=float(dist.mean()), keypoint_distance_max=float(dist.max()),
                    keypoints_compared=int(dist.numel()))
