"""MobileNetV2 whose layers are named like torchvision's, so its ImageNet checkpoint loads as is."""
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule
from torch import nn

from sscma.registry import MODELS


def make_divisible(value: float, divisor: int = 8, min_value: Optional[int] = None) -> int:
    """Round ``value`` to a multiple of ``divisor`` without going down by more than 10 %."""
    min_value = min_value or divisor
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


class ConvBNReLU6(nn.Sequential):
    """Conv2d + BatchNorm2d + ReLU6 (torchvision's ``Conv2dNormActivation`` layout)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 groups: int = 1) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, (kernel_size - 1) // 2, groups=groups,
                      bias=False), nn.BatchNorm2d(out_channels), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """Expand (1x1) -> depthwise (3x3) -> project (1x1, linear), with a skip when shapes allow."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = int(round(in_channels * expand_ratio))
        self.use_res_connect = stride == 1 and in_channels == out_channels
        layers: List[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU6(in_channels, hidden, kernel_size=1))
        layers += [
            ConvBNReLU6(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.use_res_connect else out


@MODELS.register_module()
class MobileNetV2(BaseModule):
    """MobileNetV2 (Sandler et al., 2018), built only as deep as ``out_indices`` needs.

    Stage ``i`` (0-6) is the i-th inverted-residual group of the paper; index 7 is the final 1x1 conv.
    Output strides of stages 0-7: 2, 4, 8, 16, 16, 32, 32, 32. FOMO uses ``out_indices=(2,)`` (stride 8).

    Args:
        widen_factor (float): Channel multiplier (0.35, 0.5, 0.75, 1.0 ...). Defaults to 1.0.
        out_indices (Sequence[int]): Stages whose outputs are returned. Defaults to (7,).
        in_channels (int): Image channels (3 for RGB, 1 for grayscale). Defaults to 3.
        frozen_stages (int): Stages 0..frozen_stages-1 (and the stem) are frozen; -1 freezes nothing.
        norm_eval (bool): Keep BatchNorm in eval mode while training. Defaults to False.
        init_cfg (dict, optional): mmengine initialisation config, e.g. a ``Pretrained`` checkpoint.
    """
    # expand ratio, channels, blocks, first stride
    arch_settings = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1],
                     [6, 160, 3, 2], [6, 320, 1, 1]]

    def __init__(self, widen_factor: float = 1.0, out_indices: Sequence[int] = (7, ), in_channels: int = 3,
                 frozen_stages: int = -1, norm_eval: bool = False, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if widen_factor <= 0:
            raise ValueError(f'widen_factor={widen_factor} must be positive')
        out_indices = tuple(out_indices)
        if not out_indices or any(i not in range(8) for i in out_indices):
            raise ValueError(f'out_indices={out_indices} must be a non-empty subset of 0..7')
        self.widen_factor = widen_factor
        self.out_indices = out_indices
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval

        channels = make_divisible(32 * widen_factor)
        features: List[nn.Module] = [ConvBNReLU6(in_channels, channels, stride=2)]
        self.stage_ends: List[int] = []  # index into ``features`` of each stage's last layer
        self.out_channels: List[int] = []
        for t, c, n, s in self.arch_settings[:max(out_indices) + 1]:
            out = make_divisible(c * widen_factor)
            for i in range(n):
                features.append(InvertedResidual(channels, out, s if i == 0 else 1, t))
                channels = out
            self.stage_ends.append(len(features) - 1)
            self.out_channels.append(out)
        if 7 in out_indices:
            last = make_divisible(1280 * max(1.0, widen_factor))
            features.append(ConvBNReLU6(channels, last, kernel_size=1))
            self.stage_ends.append(len(features) - 1)
            self.out_channels.append(last)
        self.features = nn.Sequential(*features)
        self._freeze_stages()

    @property
    def feature_channels(self) -> List[int]:
        """Channels of each returned feature map, in ``out_indices`` order."""
        return [self.out_channels[i] for i in self.out_indices]

    @property
    def feature_strides(self) -> List[int]:
        """Input pixels per cell of each returned feature map."""
        return [(2, 4, 8, 16, 16, 32, 32, 32)[i] for i in self.out_indices]

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        outs = []
        wanted = {self.stage_ends[i]: i for i in self.out_indices}
        for idx, layer in enumerate(self.features):
            x = layer(x)
            if idx in wanted:
                outs.append(x)
        return tuple(outs)

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        last = self.stage_ends[min(self.frozen_stages, len(self.stage_ends)) - 1] if self.frozen_stages else 0
        for layer in self.features[:last + 1]:
            layer.eval()
            for p in layer.parameters():
                p.requires_grad = False

    def train(self, mode: bool = True) -> 'MobileNetV2':
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eval()
        return self
