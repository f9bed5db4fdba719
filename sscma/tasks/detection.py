"""mmdet dense detectors (RTMDet, YOLOX ...): one packed ``(B, cells, num_classes + 4)`` output, the head's
own ``predict_by_feat`` (decoding, score threshold, NMS) outside the graph."""
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from sscma.registry import TASKS

from .base import Task, agreement, as_numpy, named

IOU_MATCH = 0.5
DEFAULT_BOX_SCORE_THR = 0.3  # tools/inference.py's default for box detectors (their test_cfg keeps ~0.001)


def detection_record(sample: Any, meta: Dict[str, Any], key: str, field: str, coords: np.ndarray) -> Dict:
    """``{key: [{field: coords, label, class, score}, ...]}`` of a sample's ``pred_instances``."""
    pred = sample.pred_instances
    labels, scores = as_numpy(pred.labels).reshape(-1), as_numpy(pred.scores).reshape(-1)
    return {key: [{field: np.round(c.astype(np.float64), 3).tolist(), **named(int(k), meta), 'score': round(float(s), 5)}
                  for c, k, s in zip(coords, labels, scores)]}


def draw_detection_sample(image: np.ndarray, sample: Any, meta: Dict[str, Any], size: int, score_thr: float,
                          boxes: bool) -> np.ndarray:
    """Ground-truth boxes (thin) and predicted centroids (FOMO ``points``, or box centres) with class and score,
    in original-image pixels; ``boxes`` also draws predicted boxes."""
    from sscma.visualization.drawing import draw_detections
    gt = sample.get('gt_instances')
    has_gt = gt is not None and 'bboxes' in gt
    gt_boxes = as_numpy(gt.bboxes) if has_gt else np.zeros((0, 4))
    gt_labels = as_numpy(gt.labels) if has_gt else np.zeros(0, int)
    pred = sample.pred_instances
    keep = as_numpy(pred.scores) >= score_thr
    pred_boxes = None
    if 'points' in pred:
        points = as_numpy(pred.points)
    else:
        b = as_numpy(pred.bboxes).reshape(-1, 4)
        points = np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], 1)
        pred_boxes = b[keep] if boxes else None
    return draw_detections(image, gt_boxes, gt_labels, points[keep], as_numpy(pred.labels)[keep],
                           as_numpy(pred.scores)[keep], list(meta.get('classes') or []), size=size,
                           pred_boxes=pred_boxes)


def pack_detections(out, input_hw) -> torch.Tensor:
    """One ``(B, N, C + 4)`` tensor from a dense head's per-level ``(cls_scores, bbox_preds)`` maps.

    N runs over the levels' cells (row-major, finest level first). Class scores go through the sigmoid and
    box distances are divided by the input size, so that every value lies in about [0, 1] and one int8
    scale fits the whole output. :func:`unpack_detections` inverts it.
    """
    cls_scores, bbox_preds = out[0], out[1]
    h, w = int(input_hw[0]), int(input_hw[1])
    size = torch.tensor([w, h, w, h], dtype=torch.float32).view(1, 4, 1, 1)
    # classes and boxes are joined per level while still 4-D: onnx2tf (TFLite) mislays 3-D concatenations
    levels = [torch.cat([c.float().sigmoid(), b.float() / size], dim=1).flatten(2)
              for c, b in zip(cls_scores, bbox_preds)]
    return torch.cat(levels, dim=2).transpose(1, 2)


def unpack_detections(packed: torch.Tensor, level_hw, input_hw):
    """Per-level ``(cls_logits, bbox_preds)`` maps, as the head's ``predict_by_feat`` takes them."""
    h, w = int(input_hw[0]), int(input_hw[1])
    num_classes = packed.shape[2] - 4
    size = torch.tensor([w, h, w, h], dtype=packed.dtype, device=packed.device).view(1, 1, 4)
    cls = torch.logit(packed[..., :num_classes].clamp(1e-6, 1 - 1e-6))
    box = packed[..., num_classes:] * size
    cls_scores, bbox_preds, start = [], [], 0
    for lh, lw in level_hw:
        end = start + lh * lw
        cls_scores.append(cls[:, start:end].transpose(1, 2).reshape(-1, num_classes, lh, lw))
        bbox_preds.append(box[:, start:end].transpose(1, 2).reshape(-1, 4, lh, lw))
        start = end
    if start != packed.shape[1]:
        raise ValueError(f'detection output has {packed.shape[1]} cells, the levels {list(level_hw)} '
                         f'of a {h}x{w} input have {start}')
    return cls_scores, bbox_preds


def annotations_before_geometry(dataset: dict) -> Optional[dict]:
    """The detection validation dataset with ``LoadAnnotations`` moved right after the image is loaded, so the
    resize moves the boxes into the network input (the metrics load them after it, in the file's pixels, on
    purpose), read outside test mode with no image filtered out; ``None`` when it loads no annotations."""
    steps = [dict(step) for step in dataset.get('pipeline') or []]
    loads = [s for s in steps if str(s.get('type', '')).split('.')[-1] == 'LoadAnnotations']
    image = [i for i, s in enumerate(steps) if str(s.get('type', '')).split('.')[-1].startswith('LoadImage')]
    if not loads or not image:
        return None
    rest = [s for s in steps if s not in loads]
    at = rest.index(steps[image[0]]) + 1
    return dict(dataset, pipeline=rest[:at] + loads + rest[at:], test_mode=False,
                filter_cfg=dict(filter_empty_gt=False, min_size=0))


def is_dense_detector(model: nn.Module) -> bool:
    """An mmdet single-stage detector whose head decodes per-level class / box maps (RTMDet, YOLOX, ...)."""
    head = getattr(model, 'bbox_head', None)
    return head is not None and hasattr(head, 'predict_by_feat') and hasattr(head, 'prior_generator')


@TASKS.register_module('SingleStageDetector')
class DenseDetectionTask(Task):
    """Box detection with an mmdet dense head.

    Parity: box agreement, ``2 * matched / (|A| + |B|)`` where a box of the exported file matches one of
    PyTorch's of the same class with IoU >= 0.5 (both decoded by the head, at the input size), and the mean
    IoU of the matched pairs.
    """
    task = 'detection'
    postprocessing = 'outside the graph: the head\'s predict_by_feat (decoding, score threshold, NMS)'
    parity_columns = (('box agreement (IoU >= 0.5)', 'box_agreement', 'percent'),
                      ('matched box IoU', 'box_iou_mean', 'number'))
    geometric_fields = ('bboxes', )

    def loss_dataset(self, dataset: dict) -> Optional[dict]:
        return annotations_before_geometry(dataset)

    def score_threshold(self, model: nn.Module, score_thr: Optional[float]) -> Optional[float]:
        return DEFAULT_BOX_SCORE_THR if score_thr is None else score_thr

    def record(self, sample: Any, meta: Dict[str, Any]) -> Dict[str, Any]:
        """``boxes``: ``bbox`` (x0, y0, x1, y1), ``label``, ``class``, ``score``."""
        return detection_record(sample, meta, 'boxes', 'bbox', as_numpy(sample.pred_instances.bboxes).reshape(-1, 4))

    def draw(self, image: np.ndarray, sample: Any, meta: Dict[str, Any], size: int, score_thr: float = 0.0,
             truth: bool = True) -> Optional[np.ndarray]:
        """Training tiles: true boxes and predicted box centres; predictions alone: the boxes too."""
        return draw_detection_sample(image, sample, meta, size, score_thr, boxes=not truth)

    def accepts(self, model: nn.Module) -> bool:
        return is_dense_detector(model)

    def graph_output(self, model: nn.Module, out: Any, images: torch.Tensor) -> torch.Tensor:
        return pack_detections(out, images.shape[-2:])

    def output_meaning(self, model: nn.Module) -> str:
        return ('(1, cells of all levels, num_classes + 4): sigmoid class scores, then box distances '
                '(left, top, right, bottom) from each cell centre divided by the input W, H, W, H')

    def decode(self, model: nn.Module, outputs: torch.Tensor, metas: List[dict], rescale: bool = True) -> List:
        """The head's ``predict_by_feat`` results (``InstanceData``) for a batch of packed outputs."""
        input_hw = metas[0]['batch_input_shape']
        strides = [s[0] if isinstance(s, (tuple, list)) else s for s in model.bbox_head.prior_generator.strides]
        level_hw = [(-(-input_hw[0] // s), -(-input_hw[1] // s)) for s in strides]
        cls_scores, bbox_preds = unpack_detections(outputs.float(), level_hw, input_hw)
        return model.bbox_head.predict_by_feat(cls_scores, bbox_preds, batch_img_metas=metas, rescale=rescale)

    def postprocess(self, model: nn.Module, outputs: torch.Tensor, data_samples: List) -> List:
        results = self.decode(model, outputs, [s.metainfo for s in data_samples])
        return model.add_pred_to_datasample(data_samples, results)

    def parity(self, model: nn.Module, outputs: Sequence[torch.Tensor], references: Sequence[torch.Tensor],
               input_hw: Tuple[int, int]) -> Dict[str, Any]:
        from mmdet.structures.bbox import bbox_overlaps
        hw = tuple(int(v) for v in input_hw)
        matched, found, ious = 0, 0, []
        for out, ref in zip(outputs, references):
            metas = [dict(img_shape=hw, ori_shape=hw, pad_shape=hw, batch_input_shape=hw, scale_factor=(1.0, 1.0))
                     for _ in range(out.shape[0])]
            for a, b in zip(self.decode(model, out, metas, False), self.decode(model, ref, metas, False)):
                found += len(a) + len(b)
                if not len(a) or not len(b):
                    continue
                iou = bbox_overlaps(a.bboxes, b.bboxes)
                iou[a.labels[:, None] != b.labels[None, :]] = 0
                for i in range(len(a)):  # greedy, in the exported file's score order
                    j = int(iou[i].argmax())
                    if iou[i, j] >= IOU_MATCH:
                        ious.append(float(iou[i, j]))
                        iou[:, j] = 0
        matched = len(ious)
        return dict(box_agreement=agreement(2 * matched, found), boxes_compared=found,
                    box_iou_mean=sum(ious) / len(ious) if ious else None)
