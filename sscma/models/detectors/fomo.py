"""FOMO (Faster Objects, More Objects): centroids from a truncated backbone and a per-cell classifier."""
from typing import List, Optional

import torch
from mmdet.models.detectors.base import BaseDetector

from sscma.models.utils.feature_info import backbone_feature_info
from sscma.registry import MODELS


@MODELS.register_module()
class Fomo(BaseDetector):
    """Backbone (+ optional neck) + :class:`FomoHead`.

    The head's ``in_channels`` and ``stride``, when not given, follow the backbone's last feature map.

    ``forward(mode='tensor')`` (what export traces) returns per-cell class probabilities
    ``(B, num_classes + 1, H, W)``; centroid decoding stays outside the graph in
    ``FomoHead.predict_by_probs``. ``predict`` returns ``DetDataSample``s whose ``pred_instances`` hold
    ``points`` (x, y in original image pixels), ``labels``, ``scores`` and a cell-sized ``bboxes``.
    """

    def __init__(self, backbone: dict, head: dict, neck: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck) if neck else None
        head = dict(head)
        if head.get('in_channels') is None and self.neck is None:
            head['in_channels'] = backbone_feature_info(self.backbone, 'in_channels')[-1].channels
        if head.get('stride') is None:
            head['stride'] = backbone_feature_info(self.backbone, 'stride')[-1].stride
        self.head = MODELS.build(head)

    def extract_feat(self, inputs: torch.Tensor):
        feats = self.backbone(inputs)
        return self.neck(feats) if self.neck is not None else feats

    def loss(self, inputs: torch.Tensor, data_samples: List) -> dict:
        return self.head.loss(self.extract_feat(inputs), data_samples)

    def predict(self, inputs: torch.Tensor, data_samples: List, rescale: bool = True) -> List:
        results = self.head.predict(self.extract_feat(inputs), data_samples, rescale=rescale)
        for sample, res in zip(data_samples, results):
            sample.pred_instances = res
            sample.set_metainfo(dict(fomo_stride=self.head.stride))
        return data_samples

    def _forward(self, inputs: torch.Tensor, data_samples: Optional[List] = None) -> torch.Tensor:
        return self.head(self.extract_feat(inputs)).softmax(1)
