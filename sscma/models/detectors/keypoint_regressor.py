"""Whole-image keypoint regression (PFLD-style): backbone + a head regressing normalised coordinates."""
import math
from typing import List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.model import BaseModel
from mmengine.structures import InstanceData

from sscma.models.utils.feature_info import backbone_feature_info
from sscma.models.utils.keypoint_codec import decode_keypoints
from sscma.registry import MODELS


@MODELS.register_module()
class KeypointRegressor(BaseModel):
    """Backbone (+ optional neck) + a keypoint regression head such as :class:`PFLDHead`.

    The head's ``in_channels`` and ``feat_size``, when not given, follow the backbone's last feature map for
    an input of ``input_size``.

    ``forward(mode='tensor')`` (what export traces) returns ``(B, K * 2)`` coordinates normalised to
    ``[0, 1]`` by the network input width / height. ``predict`` returns the data samples with
    ``pred_instances.keypoints`` ``(1, K, 2)`` in original image pixels and ``keypoint_scores`` (ones).

    Args:
        backbone (dict): e.g. ``dict(type='MobileNetV2', widen_factor=0.5, out_indices=(4, ))``.
        head (dict): e.g. ``dict(type='PFLDHead', num_keypoints=4)``.
        input_size (int | tuple[int, int]): Network input ``(width, height)``. Defaults to (112, 112).
        neck (dict, optional): A neck between backbone and head.
        data_preprocessor (dict, optional): e.g. ``dict(type='ImgDataPreprocessor', ...)``.
        channels_last (bool): Run convolutions in channels-last memory layout, faster for
            depthwise convolutions, about 1.5x on CPU here (no effect on results or export). Defaults to True.
    """

    def __init__(self, backbone: dict, head: dict, input_size: Union[int, Sequence[int]] = (112, 112),
                 neck: Optional[dict] = None, data_preprocessor: Optional[dict] = None,
                 channels_last: bool = True, init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.channels_last = channels_last
        self.input_size = (int(input_size), ) * 2 if isinstance(input_size, (int, float)) else tuple(
            int(v) for v in input_size)
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck) if neck else None
        head = dict(head)
        if head.get('in_channels') is None and self.neck is None:
            head['in_channels'] = backbone_feature_info(self.backbone, 'in_channels')[-1].channels
        if head.get('feat_size') is None and self.neck is None:
            stride = backbone_feature_info(self.backbone, 'feat_size')[-1].stride
            w, h = self.input_size
            head['feat_size'] = (math.ceil(h / stride), math.ceil(w / stride))
        self.head = MODELS.build(head)
        if channels_last:
            self.backbone.to(memory_format=torch.channels_last)

    @property
    def num_keypoints(self) -> int:
        return self.head.num_keypoints

    def extract_feat(self, inputs: torch.Tensor):
        if self.channels_last and inputs.dim() == 4:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        feats = self.backbone(inputs)
        return self.neck(feats) if self.neck is not None else feats

    def forward(self, inputs: torch.Tensor, data_samples: Optional[List] = None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.head.loss(self.extract_feat(inputs), data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.head(self.extract_feat(inputs))
        raise RuntimeError(f'Invalid mode "{mode}": expected "loss", "predict" or "tensor"')

    def predict(self, inputs: torch.Tensor, data_samples: List) -> List:
        norm = self.head(self.extract_feat(inputs)).view(inputs.shape[0], self.num_keypoints, 2)
        return self.add_pred_to_datasample(norm, data_samples, tuple(inputs.shape[-2:]))

    def add_pred_to_datasample(self, normalised: torch.Tensor, data_samples: List, input_hw=None) -> List:
        """Attach ``(B, K, 2)`` normalised predictions (from the model or an exported graph) to the samples."""
        normalised = torch.as_tensor(normalised).detach().float().cpu().view(len(data_samples), -1, 2)
        for sample, norm in zip(data_samples, normalised):
            meta = sample.metainfo
            img_shape = meta.get('img_shape', input_hw or self.input_size[::-1])
            kpts = decode_keypoints(norm, img_shape, meta.get('scale_factor', (1.0, 1.0)))
            pred = InstanceData()
            pred.keypoints = kpts.numpy()[None].astype(np.float32)
            pred.keypoint_scores = np.ones((1, kpts.shape[0]), np.float32)
            pred.keypoints_normalised = norm.numpy()[None].astype(np.float32)
            sample.pred_instances = pred
        return data_samples
