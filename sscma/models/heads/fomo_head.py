"""FOMO head: a per-cell classifier over background + N classes."""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import nn

from sscma.models.utils import bbox_to_centroid_masks
from sscma.registry import MODELS


@MODELS.register_module()
class FomoHead(BaseModule):
    """Classify each output cell as background or one of ``num_classes`` object centres.

    Training uses cross-entropy against the centroid maps of :func:`~sscma.models.utils.bbox_to_centroid_masks`,
    with object cells weighted by ``object_weight`` (they are a few percent of the cells). Prediction keeps cells
    whose best non-background probability exceeds ``score_thr`` and is a 3x3 local maximum, one centroid
    per kept cell at the cell centre.

    Args:
        in_channels (int): Channels of the backbone feature map.
        num_classes (int): Object classes (background excluded).
        stride (int): Input pixels per output cell. Defaults to 8.
        mid_channels (int): Channels of the hidden 1x1 conv. Defaults to 32.
        object_weight (float): Loss weight of object cells relative to background. Defaults to 10.
        score_thr (float): Minimum class probability of a detection. Defaults to 0.5.
    """

    def __init__(self, in_channels: int, num_classes: int, stride: int = 8, mid_channels: int = 32,
                 object_weight: float = 10.0, score_thr: float = 0.5, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f'num_classes={num_classes!r} must be a positive integer')
        self.num_classes = num_classes
        self.stride = stride
        self.score_thr = score_thr
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, mid_channels, 1, bias=False), nn.BatchNorm2d(mid_channels),
            nn.ReLU(inplace=True), nn.Conv2d(mid_channels, num_classes + 1, 1))
        self.register_buffer('class_weight', torch.tensor([1.0] + [float(object_weight)] * num_classes),
                             persistent=False)

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        """Return ``(B, num_classes + 1, H, W)`` logits; channel 0 is background."""
        return self.conv(feats[-1])

    def loss(self, feats: Sequence[torch.Tensor], data_samples: List) -> dict:
        logits = self(feats)
        targets = self.targets(data_samples, logits.shape[-2:], logits.device)
        loss = F.cross_entropy(logits, targets, weight=self.class_weight)
        with torch.no_grad():
            pred = logits.argmax(1)
            obj = targets > 0
            recall = (pred[obj] == targets[obj]).float().mean() if obj.any() else logits.new_tensor(1.0)
        return dict(loss_cls=loss, cell_recall=recall)

    def targets(self, data_samples: List, hw: Tuple[int, int], device) -> torch.Tensor:
        boxes = [torch.as_tensor(getattr(s.gt_instances.bboxes, 'tensor', s.gt_instances.bboxes)) for s in data_samples]
        labels = [s.gt_instances.labels for s in data_samples]
        return bbox_to_centroid_masks(boxes, labels, hw, self.stride).to(device)

    def predict(self, feats: Sequence[torch.Tensor], data_samples: List, rescale: bool = True) -> List[InstanceData]:
        probs = self(feats).softmax(1)
        return self.predict_by_probs(probs, [s.metainfo for s in data_samples], rescale)

    def predict_by_probs(self, probs: torch.Tensor, metas: List[dict], rescale: bool = True) -> List[InstanceData]:
        """Decode ``(B, C+1, H, W)`` probabilities (from the model or an exported graph) into centroids."""
        probs = torch.as_tensor(probs)
        obj = probs[:, 1:]
        score, label = obj.max(1)  # best object class per cell
        is_peak = score == F.max_pool2d(score[:, None], 3, stride=1, padding=1)[:, 0]
        keep = (score > self.score_thr) & is_peak
        results = []
        for b, meta in enumerate(metas):
            ys, xs = torch.nonzero(keep[b], as_tuple=True)
            points = torch.stack([(xs.float() + 0.5) * self.stride, (ys.float() + 0.5) * self.stride], dim=1)
            half = torch.full_like(points, self.stride / 2)
            if rescale and 'scale_factor' in meta:
                scale = points.new_tensor(meta['scale_factor'][:2])
                points, half = points / scale, half / scale
            res = InstanceData()
            res.points = points
            res.bboxes = torch.cat([points - half, points + half], dim=1)
            res.scores = score[b, ys, xs]
            res.labels = label[b, ys, xs]
            results.append(res)
        return results
