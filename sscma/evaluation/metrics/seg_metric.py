"""mIoU, per-class IoU and pixel accuracy at the original image size (mmsegmentation's ``IoUMetric`` formulas).

Each prediction is compared with the mask read again from its source at the image's own size (never the
resized training mask): IoU_c = |pred = c and true = c| / |pred = c or true = c| over the pixels whose true
class is not ignored (255), summed over the whole split before dividing (mmseg's "total area" IoU). Classes
absent from both prediction and truth in the split are NaN and left out of the mean, as in mmseg.
"""
from typing import Dict, List, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric

from sscma.registry import METRICS

IGNORE_INDEX = 255


def confusion(pred: np.ndarray, true: np.ndarray, num_classes: int) -> np.ndarray:
    """``(num_classes, num_classes)`` counts, rows = true class, columns = predicted, ignored pixels left out."""
    valid = true != IGNORE_INDEX
    return np.bincount(true[valid].astype(np.int64) * num_classes + pred[valid].astype(np.int64),
                       minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def iou_from_confusion(matrix: np.ndarray) -> np.ndarray:
    """Per-class IoU (NaN where the class is in neither prediction nor truth)."""
    inter = np.diag(matrix).astype(np.float64)
    union = matrix.sum(0) + matrix.sum(1) - inter
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(union > 0, inter / np.maximum(union, 1), np.nan)


@METRICS.register_module()
class SegMetric(BaseMetric):
    """``mIoU``, ``aAcc`` (pixel accuracy), ``mAcc``, ``IoU.<class>`` and ``confusion_matrix`` (pixels; rows:
    true class), which :class:`~sscma.engine.hooks.RunSummaryHook` draws to ``confusion_matrix_<phase>.png``."""
    default_prefix = 'seg'

    def process(self, data_batch, data_samples: Sequence) -> None:
        from sscma.datasets.segmentation_dataset import read_mask
        n = len((self.dataset_meta or {}).get('classes') or [])
        for s in data_samples:
            meta = getattr(s, 'metainfo', s)  # mmengine's Evaluator passes dicts (metainfo flattened in)
            pred = np.asarray(s.get('pred_sem_seg'))
            true = read_mask(meta['seg_source'], meta.get('seg_lut'))
            k = max(n, int(pred.max()) + 1, int(true[true != IGNORE_INDEX].max(initial=0)) + 1)
            m = confusion(pred, true, k)
            self.results.append(m)

    def compute_metrics(self, results: List[np.ndarray]) -> Dict[str, float]:
        k = max(r.shape[0] for r in results)
        total = np.zeros((k, k), np.int64)
        for r in results:
            total[:r.shape[0], :r.shape[1]] += r
        iou = iou_from_confusion(total)
        classes = list((self.dataset_meta or {}).get('classes') or [str(i) for i in range(k)])
        acc = np.diag(total) / np.maximum(total.sum(1), 1)
        out = dict(mIoU=float(np.nanmean(iou)), aAcc=float(np.diag(total).sum() / max(total.sum(), 1)),
                   mAcc=float(np.mean(acc[total.sum(1) > 0])))
        out.update({f'IoU.{classes[i] if i < len(classes) else i}': float(v) for i, v in enumerate(iou)})
        out['confusion_matrix'] = torch.from_numpy(total)
        return out
