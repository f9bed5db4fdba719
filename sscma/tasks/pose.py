"""One-stage multi-object pose (YOLOX-Pose head): boxes and keypoints decoded in the graph, NMS outside it."""
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from sscma.registry import TASKS

from .base import Task, agreement, as_numpy, named
from .detection import DEFAULT_BOX_SCORE_THR, IOU_MATCH


def _keypoints(pred: Any, names: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
    """``(N, K, 2)`` keypoints and ``(N, K)`` visibility scores of N predictions (also when N is 0)."""
    kpts = as_numpy(pred.keypoints)
    k = kpts.shape[1] if kpts.ndim == 3 else len(names)
    n = len(as_numpy(pred.scores).reshape(-1))
    return kpts.reshape(n, k, 2), as_numpy(pred.keypoint_scores).reshape(n, k)


def _metas(batch: int, hw: Tuple[int, int]) -> List[Dict]:
    """Image metas of a batch scored at the input size itself (no letterbox): what parity compares."""
    w, h = hw[1], hw[0]
    return [dict(input_size=(w, h), input_center=np.array([w / 2, h / 2]), input_scale=np.array([w, h]),
                 batch_input_shape=hw) for _ in range(batch)]


@TASKS.register_module('BottomupPoseEstimator')
class PoseTask(Task):
    """Boxes + K keypoints per object from ``PackedYOLOXPoseHead``.

    The graph returns ``(B, cells, num_classes + 5 + 3K)``: per cell the class scores, objectness, the box
    centre and log half-size, the keypoints and their visibilities, all in ``[0, 1]``
    (:meth:`PackedYOLOXPoseHead.pack`). Outside it: score threshold and
    NMS (``PackedYOLOXPoseHead.decode``), then mmpose's ``add_pred_to_datasample`` (letterbox -> image pixels).

    Parity: object agreement ``2 * matched / (|A| + |B|)`` where objects of the exported file and PyTorch match
    with box IoU >= 0.5 (score >= 0.3, both decoded at the input size), and the mean / max distance of the
    matched objects' keypoints in input pixels.
    """
    task = 'pose'
    postprocessing = ('outside the graph: score threshold and NMS (PackedYOLOXPoseHead.decode), then letterbox '
                      'to image pixels (mmpose BottomupPoseEstimator.add_pred_to_datasample)')
    parity_columns = (('object agreement (IoU >= 0.5)', 'object_agreement', 'percent'),
                      ('keypoint distance mean (px)', 'keypoint_distance_mean', 'number'),
                      ('keypoint distance max (px)', 'keypoint_distance_max', 'number'))
    geometric_fields = ('bboxes', 'keypoints')

    def loss_dataset(self, dataset: dict) -> Optional[dict]:
        """None: the test pipeline resizes the image only (keypoints stay in the file's pixels) and has no target
        encoder, so a loss on it would be measured against misplaced targets."""
        return None

    def accepts(self, model: nn.Module) -> bool:
        return hasattr(getattr(model, 'head', None), 'pack')

    def score_threshold(self, model: nn.Module, score_thr: Optional[float]) -> Optional[float]:
        return DEFAULT_BOX_SCORE_THR if score_thr is None else score_thr

    def graph_output(self, model: nn.Module, out: Any, images: torch.Tensor) -> torch.Tensor:
        return model.head.pack(out, images.shape[-2:])

    def output_meaning(self, model: nn.Module) -> str:
        k, (lo, hi) = model.head.num_keypoints, model.head.log_half_range
        return (f'(1, cells of all levels, num_classes + 5 + 3 x {k}): sigmoid class scores, sigmoid objectness, '
                f'box centre (cx, cy) divided by the input W / H, box log half-size log(w / 2W), log(h / 2H) mapped '
                f'from [{lo}, {hi}] to [0, 1], {k} keypoints (x, y) divided by the input W / H, '
                f'{k} sigmoid visibilities; all clamped to [0, 1]')

    def record(self, sample: Any, meta: Dict[str, Any]) -> Dict[str, Any]:
        """``objects``: ``bbox`` (x0, y0, x1, y1), ``label``, ``class``, ``score``, ``keypoints`` ([x, y] in
        original-image pixels), ``keypoint_scores`` (visibility), and the ``keypoint_names``."""
        pred = sample.pred_instances
        names = list((meta or {}).get('keypoint_names') or [])
        boxes = as_numpy(pred.bboxes).reshape(-1, 4)
        kpts, vis = _keypoints(pred, names)
        objects = [dict(bbox=np.round(b.astype(np.float64), 3).tolist(), **named(int(c), meta),
                        score=round(float(s), 5), keypoints=np.round(p.astype(np.float64), 3).tolist(),
                        keypoint_scores=np.round(v.astype(np.float64), 4).tolist())
                   for b, c, s, p, v in zip(boxes, as_numpy(pred.labels).reshape(-1),
                                            as_numpy(pred.scores).reshape(-1), kpts, vis)]
        out: Dict[str, Any] = dict(objects=objects)
        if names:
            out['keypoint_names'] = names
        return out

    def summary(self, records: List[Dict[str, Any]]) -> List[str]:
        found = sum(len(r.get('objects') or []) for r in records)
        return [f'{found} objects with keypoints in {len(records)} images']

    def draw(self, image: np.ndarray, sample: Any, meta: Dict[str, Any], size: int, score_thr: float = 0.0,
             truth: bool = True) -> Optional[np.ndarray]:
        """Predicted skeletons (score >= ``score_thr``); with ``truth``, the labelled keypoints and links."""
        from sscma.visualization.drawing import draw_poses
        if 'pred_instances' not in sample or 'keypoints' not in sample.pred_instances:
            return None
        pred = sample.pred_instances
        keep = as_numpy(pred.scores).reshape(-1) >= score_thr
        kpts, vis = (a[keep] for a in _keypoints(pred, (meta or {}).get('keypoint_names') or []))
        k = kpts.shape[1]
        gt, gt_vis = np.zeros((0, k, 2)), np.zeros((0, k))
        anns = [a for a in (sample.metainfo.get('raw_ann_info') or []) if a] if truth else []
        if anns:
            arr = np.asarray([a['keypoints'] for a in anns], np.float64).reshape(len(anns), -1, 3)
            gt, gt_vis = arr[..., :2], arr[..., 2]
        skeleton = (meta or {}).get('skeleton_links') or []
        return draw_poses(image, gt, gt_vis, kpts, vis, skeleton, size=size)

    def postprocess(self, model: nn.Module, outputs: torch.Tensor, data_samples: List) -> List:
        metas = [s.metainfo for s in data_samples]
        preds = model.head.decode(outputs, metas[0]['batch_input_shape'], metas, model.test_cfg)
        return model.add_pred_to_datasample(preds, None, data_samples)

    def parity(self, model: nn.Module, outputs: Sequence[torch.Tensor], references: Sequence[torch.Tensor],
               input_hw: Tuple[int, int]) -> Dict[str, Any]:
        from mmdet.structures.bbox import bbox_overlaps
        hw = tuple(int(v) for v in input_hw)
        cfg = dict(model.test_cfg or {}, score_thr=DEFAULT_BOX_SCORE_THR)
        found, dists = 0, []
        for out, ref in zip(outputs, references):
            metas = _metas(out.shape[0], hw)
            for a, b in zip(model.head.decode(out, hw, metas, cfg), model.head.decode(ref, hw, metas, cfg)):
                found += len(a) + len(b)
                if not len(a) or not len(b):
                    continue
                iou = bbox_overlaps(torch.as_tensor(a.bboxes), torch.as_tensor(b.bboxes)).numpy()
                for i in range(len(a)):  # greedy, in the exported file's score order
                    j = int(iou[i].argmax())
                    if iou[i, j] >= IOU_MATCH:
                        dists.append(np.linalg.norm(a.keypoints[i] - b.keypoints[j], axis=-1))
                        iou[:, j] = 0
        dist = np.concatenate(dists) if dists else np.zeros(0)
        return dict(object_agreement=agreement(2 * len(dists), found), objects_compared=found,
                    keypoint_distance_mean=float(dist.mean()) if dist.size else None,
                    keypoint_distance_max=float(dist.max()) if dist.size else None)
