"""Precision / recall / F1 of FOMO centroids."""
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric

from sscma.registry import METRICS


def match_centroids(pred_points: np.ndarray, pred_labels: np.ndarray, pred_scores: np.ndarray,
                    gt_points: np.ndarray, gt_labels: np.ndarray, tolerance: Sequence[float]) -> np.ndarray:
    """Greedy one-to-one matching of predicted to ground-truth centroids of the same class.

    Predictions are taken by descending score; each takes the nearest unmatched ground truth of its class
    whose offset is within ``tolerance`` (x, y) in both axes, i.e. within one output cell.

    Returns:
        ndarray: For each prediction, the index of its matched ground truth or -1.
    """
    matched = np.full(len(pred_points), -1, dtype=np.int64)
    taken = np.zeros(len(gt_points), dtype=bool)
    tol = np.asarray(tolerance, dtype=np.float64).reshape(2)
    for i in np.argsort(-np.asarray(pred_scores), kind='stable'):
        if not len(gt_points):
            break
        d = np.abs(gt_points - pred_points[i])
        ok = (~taken) & (gt_labels == pred_labels[i]) & (d[:, 0] <= tol[0]) & (d[:, 1] <= tol[1])
        if ok.any():
            dist = np.where(ok, np.hypot(d[:, 0], d[:, 1]), np.inf)
            j = int(np.argmin(dist))
            matched[i] = j
            taken[j] = True
    return matched


def sample_matches(sample: dict, tolerance_px: Optional[float] = None) -> Dict[str, np.ndarray]:
    """One predicted sample (a ``DetDataSample`` as a dict) matched as :class:`FomoMetric` does:
    ``pred_labels``, ``pred_scores``, ``tp`` (per prediction, matched or not) and ``gt_labels``; within one
    output cell, or ``tolerance_px`` network-input pixels when given."""
    pred, gt = sample['pred_instances'], sample['gt_instances']
    scale = np.asarray(sample.get('scale_factor', (1.0, 1.0))[:2], dtype=np.float64)
    boxes = gt['bboxes']
    boxes = (boxes.tensor if hasattr(boxes, 'tensor') else boxes).cpu().numpy().reshape(-1, 4)
    gt_points = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], 1)
    tolerance = (tolerance_px or sample.get('fomo_stride', 8)) / scale
    pred_labels, pred_scores = pred['labels'].cpu().numpy(), pred['scores'].cpu().numpy()
    gt_labels = gt['labels'].cpu().numpy()
    matched = match_centroids(pred['points'].cpu().numpy().reshape(-1, 2), pred_labels, pred_scores, gt_points,
                              gt_labels, tolerance)
    return dict(pred_labels=pred_labels, pred_scores=pred_scores, tp=matched >= 0, gt_labels=gt_labels)


def f1_by_threshold(matches: Sequence[Dict[str, np.ndarray]], thresholds: Sequence[float],
                    judged_labels: Optional[Sequence[int]] = None) -> np.ndarray:
    """Micro F1 of the predictions scoring above each of ``thresholds``, from :func:`sample_matches` results
    made at a threshold no higher than the lowest (matching takes predictions by descending score, so the
    matches of those above a higher threshold are the same); ``judged_labels``: the classes counted (all)."""
    scores = np.concatenate([m['pred_scores'] for m in matches] or [np.zeros(0)])
    tp = np.concatenate([m['tp'] for m in matches] or [np.zeros(0, bool)])
    labels = np.concatenate([m['pred_labels'] for m in matches] or [np.zeros(0, np.int64)])
    gt = np.concatenate([m['gt_labels'] for m in matches] or [np.zeros(0, np.int64)])
    if judged_labels is not None:
        judged = np.asarray(list(judged_labels), dtype=np.int64)
        keep = np.isin(labels, judged)
        scores, tp, gt = scores[keep], tp[keep], gt[np.isin(gt, judged)]
    f1 = []
    for t in thresholds:
        above = scores > t
        t_p = int((tp & above).sum())
        f1.append(2 * t_p / (int(above.sum()) + len(gt)) if int(above.sum()) + len(gt) else 0.0)
    return np.asarray(f1)


@METRICS.register_module()
class FomoMetric(BaseMetric):
    """Per-class and micro precision, recall and F1 of centroids, with TP / FP / FN counts.

    A prediction is a true positive when it matches, one-to-one, a ground-truth box centre of the same
    class within one output cell (see :func:`match_centroids`). Everything is compared in original-image
    pixels, mmdet's convention: ``gt_instances`` boxes are the dataset's boxes as loaded (test pipelines
    load them after ``Resize``, so they are never resized), predictions come from ``FomoHead`` already
    mapped back with ``scale_factor``, and the one-cell tolerance is ``stride / scale_factor`` per axis (a
    model cut at stride 16 is judged within 16 input pixels; ``tolerance_px`` fixes it, to compare cuts).
    Classes listed in the dataset's ``unlabelled_classes`` (model classes the data does not label, see
    :mod:`sscma.utils.class_names`) are not judged: their predictions are neither true nor false positives.

    Args:
        classes (Sequence[str], optional): Class names for per-class keys when the dataset gives none (the
            dataset's names win: its labels are numbered in their order).
        prefix (str, optional): Key prefix. Defaults to ``'fomo'``.
        tolerance_px (float, optional): The match tolerance in network-input pixels per axis instead of one
            output cell.
    """
    default_prefix = 'fomo'

    def __init__(self, classes: Optional[Sequence[str]] = None, collect_device: str = 'cpu',
                 prefix: Optional[str] = None, tolerance_px: Optional[float] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.classes = list(classes) if classes else None
        number = isinstance(tolerance_px, (int, float)) and not isinstance(tolerance_px, bool)
        if tolerance_px is not None and not (number and tolerance_px > 0):
            raise ValueError(f'FomoMetric tolerance_px={tolerance_px!r}: expected a positive number of pixels')
        self.tolerance_px = tolerance_px

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            m = sample_matches(sample, self.tolerance_px)
            self.results.append(dict(pred_labels=m['pred_labels'], gt_labels=m['gt_labels'],
                                     tp_labels=m['pred_labels'][m['tp']]))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        classes = list((self.dataset_meta or {}).get('classes') or []) or self.classes or []  # labels follow the dataset
        n = len(classes) or 1 + max([int(r['gt_labels'].max()) for r in results if len(r['gt_labels'])] or [0])
        names = classes or [str(i) for i in range(n)]
        tp, fp, fn = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64)
        for r in results:
            t = np.bincount(r['tp_labels'], minlength=n)[:n]
            p = np.bincount(r['pred_labels'], minlength=n)[:n]
            g = np.bincount(r['gt_labels'], minlength=n)[:n]
            tp += t
            fp += p - t
            fn += g - t
        # classes the model knows but the dataset does not label (class_match='shared'): not judged
        unlabelled = set((self.dataset_meta or {}).get('unlabelled_classes') or ())
        judged = np.array([name not in unlabelled for name in names])
        tp, fp, fn = tp * judged, fp * judged, fn * judged
        metrics: Dict[str, float] = {}

        def prf(t: int, f_p: int, f_n: int):
            precision = t / (t + f_p) if t + f_p else 0.0
            recall = t / (t + f_n) if t + f_n else 0.0
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            return precision, recall, f1

        # micro F1 first: it is the metric the best checkpoint is chosen by ('auto')
        p, r, f = prf(int(tp.sum()), int(fp.sum()), int(fn.sum()))
        metrics.update(f1=f, precision=p, recall=r, tp=int(tp.sum()), fp=int(fp.sum()), fn=int(fn.sum()))
        for i, name in enumerate(names):
            if not judged[i]:
                continue
            p, r, f = prf(int(tp[i]), int(fp[i]), int(fn[i]))
            metrics.update({f'{name}_precision': p, f'{name}_recall': r, f'{name}_f1': f})
        return metrics
