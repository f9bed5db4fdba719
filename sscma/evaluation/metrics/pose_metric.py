"""OKS AP of multi-object keypoints (mmpose's ``CocoMetric``, xtcocotools) and per-keypoint PCK."""
from typing import Dict, List, Sequence

import numpy as np
from mmpose.evaluation.metrics import CocoMetric

from sscma.registry import METRICS


def match_by_oks(gt_kpts: np.ndarray, gt_vis: np.ndarray, gt_areas: np.ndarray, pred_kpts: np.ndarray,
                 sigmas: np.ndarray) -> np.ndarray:
    """For each ground-truth object, the index of its prediction (-1: none), greedy by OKS.

    ``gt_kpts`` (G, K, 2), ``gt_vis`` (G, K) > 0 where labelled, ``gt_areas`` (G,), ``pred_kpts`` (P, K, 2) in
    the order they may be taken (best score first). OKS as COCO: ``exp(-d^2 / (2 area (2 sigma)^2))`` averaged
    over labelled keypoints; a pair with OKS 0 is no match.
    """
    match = np.full(len(gt_kpts), -1)
    if not len(gt_kpts) or not len(pred_kpts):
        return match
    d2 = ((gt_kpts[:, None] - pred_kpts[None]) ** 2).sum(-1)  # (G, P, K)
    var = (2 * sigmas[None, None]) ** 2 * np.maximum(gt_areas, 1e-9)[:, None, None] * 2
    labelled = gt_vis[:, None] > 0
    oks = (np.exp(-d2 / var) * labelled).sum(-1) / np.maximum(labelled.sum(-1), 1)  # (G, P)
    taken = np.zeros(len(pred_kpts), bool)
    for g in np.argsort(-oks.max(1)):
        candidates = np.where(taken, -1, oks[g])
        p = int(candidates.argmax())
        if candidates[p] > 0:
            match[g], taken[p] = p, True
    return match


def pck_per_keypoint(gts: Sequence[Dict], preds: Sequence[Dict], sigmas: np.ndarray, thr: float,
                     score_thr: float) -> np.ndarray:
    """Per keypoint, the fraction of labelled ground-truth keypoints whose matched prediction (score >=
    ``score_thr``) lies within ``thr`` x the longer side of the object's box; an unmatched object counts as missed.

    ``gts``: per image ``{'raw_ann_info': [COCO annotations]}``; ``preds``: per image ``keypoints`` (N, K, 2) and
    ``bbox_scores`` (N,), in original-image pixels.
    """
    hits, counts = np.zeros(len(sigmas)), np.zeros(len(sigmas))
    for gt, pred in zip(gts, preds):
        anns = [a for a in (gt.get('raw_ann_info') or []) if a is not None and not a.get('iscrowd')]
        if not anns:
            continue
        k = np.asarray([a['keypoints'] for a in anns], np.float64).reshape(len(anns), -1, 3)
        boxes = np.asarray([a['bbox'] for a in anns], np.float64)
        areas = np.asarray([a.get('area') or b[2] * b[3] for a, b in zip(anns, boxes)], np.float64)
        scores = np.asarray(pred['bbox_scores'], np.float64).reshape(-1)
        keep = np.argsort(-scores)
        keep = keep[scores[keep] >= score_thr]
        p = np.asarray(pred['keypoints'], np.float64)[keep]
        match = match_by_oks(k[..., :2], k[..., 2], areas, p, sigmas)
        vis = k[..., 2] > 0
        counts += vis.sum(0)
        for g, m in enumerate(match):
            if m < 0:
                continue
            dist = np.linalg.norm(p[m] - k[g, :, :2], axis=-1)
            hits += vis[g] & (dist <= thr * max(boxes[g, 2], boxes[g, 3]))
    return np.where(counts > 0, hits / np.maximum(counts, 1), np.nan)


@METRICS.register_module()
class PoseMetric(CocoMetric):
    """mmpose's ``CocoMetric`` (OKS AP, AP .5, AP .75, AR ...; ground truth from the dataset when there is no
    ``ann_file``) plus ``PCK@thr`` overall and per keypoint (``PCK@0.1/<keypoint name>``).

    Args:
        pck_thr (float): A keypoint is correct within this fraction of the longer side of its object's box.
        pck_score_thr (float): Predictions below this score are not matched for PCK.
        **kwargs: ``CocoMetric``'s (``score_mode``, ``nms_mode`` ...).
    """

    def __init__(self, pck_thr: float = 0.1, pck_score_thr: float = 0.3, **kwargs) -> None:
        super().__init__(**kwargs)
        self.pck_thr, self.pck_score_thr = pck_thr, pck_score_thr

    def compute_metrics(self, results: List) -> Dict[str, float]:
        preds, gts = zip(*results) if results else ((), ())
        metrics = dict(super().compute_metrics(results))
        if self.ann_file is None:  # ground truth from the dataset: collected again (with its raw annotations) next time
            self.coco = None
        sigmas = np.asarray(self.dataset_meta['sigmas'], np.float64)
        names = list(self.dataset_meta.get('keypoint_names') or range(len(sigmas)))
        by_image: Dict = {}
        for pred, gt in zip(preds, gts):  # a bottom-up sample is one image
            by_image[pred['img_id']] = (gt, pred)
        pck = pck_per_keypoint([g for g, _ in by_image.values()], [p for _, p in by_image.values()], sigmas,
                               self.pck_thr, self.pck_score_thr)
        key = f'PCK@{self.pck_thr:g}'
        metrics[key] = float(np.nanmean(pck)) if np.isfinite(pck).any() else 0.0
        for name, value in zip(names, pck):
            if np.isfinite(value):
                metrics[f'{key}/{name}'] = float(value)
        return metrics
