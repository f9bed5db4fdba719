"""mmpose's YOLOX-Pose head, predicting through the one tensor an exported graph returns.

Training is mmpose's ``YOLOXPoseHead`` unchanged (SimOTA assignment, IoU / objectness / OKS / visibility
losses). Prediction goes in two steps that the exported model shares: :meth:`PackedYOLOXPoseHead.pack` decodes
every cell's box and keypoints inside the graph, divides them by the input size and clamps them to the input
(so that the whole output lies in [0, 1] and one int8 scale fits it), and :meth:`PackedYOLOXPoseHead.decode`
keeps cells above the score threshold and runs NMS outside it, as ``YOLOXPoseHead.predict`` does.
"""
import copy
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.structures import InstanceData
from mmpose.evaluation.functional import nms_torch
from mmpose.models.heads.hybrid_heads.yoloxpose_head import YOLOXPoseHead
from mmpose.models.utils import filter_scores_and_topk
from torch import Tensor
from torch.nn import functional as F

from sscma.registry import MODELS


def _unit(x: Tensor) -> Tensor:
    """``x`` clamped to ``[0, 1]``, written with RELU6 (what TFLite Micro runs)."""
    return F.relu6(x * 6.0) / 6.0


@MODELS.register_module()
class PackedYOLOXPoseHead(YOLOXPoseHead):
    """``YOLOXPoseHead`` whose predictions are decoded from :meth:`pack`'s single tensor.

    Args:
        sigmas (Sequence[float], optional): Per-keypoint OKS sigmas of the OKS loss and of the assigner's OKS
            (mmpose reads them from a dataset file otherwise); ``None``: ``uniform_sigma`` for every keypoint.
        uniform_sigma (float): The sigma of every keypoint when ``sigmas`` is None (the mean of COCO's).
        **kwargs: ``YOLOXPoseHead``'s arguments.
    """
    log_half_range = (-6.5, 0.5)  # packed box half-sizes: 0.0015 to 1.65 input sizes

    def __init__(self, *args, sigmas: Optional[Sequence[float]] = None, uniform_sigma: float = 0.067,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        values = list(sigmas) if sigmas is not None else [uniform_sigma] * self.num_keypoints
        if len(values) != self.num_keypoints:
            raise ValueError(f'sigmas has {len(values)} values for num_keypoints={self.num_keypoints}')
        self.loss_oks.register_buffer('sigmas', torch.tensor(values, dtype=torch.float32), persistent=False)
        calculator = getattr(self.assigner, 'oks_calculator', None)
        if calculator is not None:
            calculator.sigmas = torch.tensor(values, dtype=torch.float32)

    @property
    def packed_channels(self) -> int:
        """Values per cell of :meth:`pack`: class scores, objectness, box, 2 x K keypoints, K visibilities."""
        return self.num_classes + 5 + 3 * self.num_keypoints

    def pack(self, maps: Tuple[List[Tensor], ...], input_hw: Sequence[int]) -> Tensor:
        """``(B, cells of all levels, num_classes + 5 + 3K)`` from the head's per-level maps.

        Per cell: sigmoid class scores, sigmoid objectness, the box centre ``(cx, cy)`` divided by the input
        width / height, the box's log half-size ``log(half w / W)``, ``log(half h / H)`` mapped from
        ``log_half_range`` to ``[0, 1]`` (the exponential is taken outside the graph: TFLite Micro's
        EXP has no int8 kernel), the keypoints ``(x1, y1, x2, y2, ...)`` divided by the input width / height,
        then the K sigmoid visibilities. Every value is clamped to ``[0, 1]`` (as ``relu6(6 x) / 6``: TFLite
        Micro has no ``RELU_0_TO_1``), so one int8 scale fits the tensor (unclamped, background cells'
        keypoints span tens of input sizes and int8 loses pixels). Cells run row-major, finest level first.
        Everything is computed on 4-D maps and joined per level before flattening (onnx2tf mislays 3-D
        concatenations).
        """
        cls_scores, objectnesses, bbox_preds, kpt_offsets, kpt_vis = maps
        h_in, w_in = int(input_hw[0]), int(input_hw[1])
        levels = []
        for cls, obj, box, kpt, vis, stride in zip(cls_scores, objectnesses, bbox_preds, kpt_offsets, kpt_vis,
                                                   self.featmap_strides):
            h, w = cls.shape[-2:]
            ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32, device=cls.device) * stride,
                                    torch.arange(w, dtype=torch.float32, device=cls.device) * stride, indexing='ij')
            prior = torch.stack([xs, ys])[None]  # (1, 2, h, w): mmpose's MlvlPointGenerator, offset 0
            size = torch.tensor([w_in, h_in], dtype=torch.float32, device=cls.device).view(1, 2, 1, 1)
            box = box.float()
            centre = _unit((box[:, :2] * stride + prior) / size)
            log_half = box[:, 2:] + torch.log(stride / 2 / size)  # log(exp(b) * stride / 2 / size)
            lo, hi = self.log_half_range
            boxes = torch.cat([centre, _unit((log_half - lo) / (hi - lo))], dim=1)
            k = kpt.shape[1] // 2
            kpts = _unit((kpt.float() * stride + prior.repeat(1, k, 1, 1)) / size.repeat(1, k, 1, 1))
            levels.append(torch.cat([cls.float().sigmoid(), obj.float().sigmoid(), boxes, kpts,
                                     vis.float().sigmoid()], dim=1).flatten(2))
        return torch.cat(levels, dim=2).transpose(1, 2)

    def decode(self, packed: Tensor, input_hw: Sequence[int], batch_img_metas: List[Dict],
               test_cfg: Optional[Dict] = None) -> List:
        """mmpose's ``InstanceData`` predictions (numpy; boxes and keypoints in input pixels) of a batch packed
        at ``input_hw``: score = class score x objectness, ``score_thr``, ``nms_pre`` and ``nms_thr`` as
        ``YOLOXPoseHead``; boxes clamped to each image's ``input_size``."""
        cfg = copy.deepcopy(test_cfg or {})
        c, k = self.num_classes, self.num_keypoints
        if packed.shape[-1] != self.packed_channels:
            raise ValueError(f'pose output has {packed.shape[-1]} values per cell, the head ({c} classes, {k} '
                             f'keypoints) makes {self.packed_channels}')
        packed = packed.float()
        scale = packed.new_tensor([float(input_hw[1]), float(input_hw[0])])
        lo, hi = self.log_half_range
        results = []
        for out, meta in zip(packed, batch_img_metas):
            scores = out[:, :c] * out[:, c:c + 1]
            centre = out[:, c + 1:c + 3] * scale
            half = torch.exp(out[:, c + 3:c + 5] * (hi - lo) + lo) * scale
            bboxes = torch.cat([centre - half, centre + half], dim=1)
            keypoints = out[:, c + 5:c + 5 + 2 * k].reshape(-1, k, 2) * scale
            vis = out[:, c + 5 + 2 * k:]
            scores, labels = scores.max(1, keepdim=True)
            scores, _, keep, found = filter_scores_and_topk(
                scores, cfg.get('score_thr', 0.01), cfg.get('nms_pre', 100000), results=dict(labels=labels[:, 0]))
            labels, bboxes, keypoints, vis = found['labels'], bboxes[keep], keypoints[keep], vis[keep]
            if bboxes.numel() > 0 and cfg.get('nms_thr', 1.0) < 1.0:
                kept = nms_torch(bboxes, scores, cfg['nms_thr'])
                scores, labels, bboxes, keypoints, vis = (t[kept] for t in (scores, labels, bboxes, keypoints, vis))
            input_size = meta['input_size']
            bboxes[:, 0::2].clamp_(0, input_size[0])
            bboxes[:, 1::2].clamp_(0, input_size[1])
            results.append(InstanceData(scores=scores, labels=labels, bboxes=bboxes, bbox_scores=scores,
                                        keypoints=keypoints, keypoint_scores=vis, keypoints_visible=vis).numpy())
        return results

    def predict(self, feats, batch_data_samples, test_cfg: Dict = {}) -> List:
        """:meth:`decode` of :meth:`pack` of the head's maps: ``YOLOXPoseHead.predict`` with keypoints clamped to the
        input."""
        maps = self.forward(feats)
        hw = [n * self.featmap_strides[0] for n in maps[0][0].shape[-2:]]  # the (padded) input
        return self.decode(self.pack(maps, hw), hw, [d.metainfo for d in batch_data_samples], test_cfg)
