"""LR-ASPP (Howard et al., MobileNetV3, 2019): a light segmentation decoder for two backbone strides."""
from typing import Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import nn

from sscma.registry import MODELS


@MODELS.register_module()
class LRASPPHead(BaseModule):
    """Logits at the finer feature's stride from a coarse map (1x1 conv, gated by its global average: the
    "squeeze" branch of LR-ASPP) upsampled onto a fine map, each with its own classifier, summed.

    Args:
        in_channels (Sequence[int]): Channels of the fine and the coarse map.
        num_classes (int): Classes, background included.
        channels (int): Width of the coarse branch. Defaults to 64.
        pool_size (Sequence[int]): ``(h, w)`` of the coarse map (the gate averages it with one fixed-size pooling,
            an op TFLite Micro and vela run). Set by the segmentor from its input size.
        upsample (int): Stride of the coarse map over the fine one (a fixed factor: ppq's int8 ONNX and
            TFLite take a Resize by scale, then a crop where a side is odd). Set by the segmentor.
    """

    def __init__(self, in_channels: Sequence[int], num_classes: int, pool_size: Sequence[int], channels: int = 64,
                 upsample: int = 2, init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.upsample = int(upsample)
        low, high = in_channels
        self.num_classes = num_classes
        self.branch = nn.Sequential(nn.Conv2d(high, channels, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU())
        self.gate = nn.Sequential(nn.AvgPool2d(tuple(pool_size)), nn.Conv2d(high, channels, 1), nn.Sigmoid())
        self.high_cls = nn.Conv2d(channels, num_classes, 1)
        self.low_cls = nn.Conv2d(low, num_classes, 1)

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        low, high = feats[0], feats[-1]
        x = self.branch(high) * self.gate(high)
        x = F.interpolate(x, scale_factor=float(self.upsample), mode='bilinear', align_corners=False)
        if x.shape[-2:] != low.shape[-2:]:
            x = x[..., :low.shape[-2], :low.shape[-1]]
        return self.high_cls(x) + self.low_cls(low)
