"""MobileNetV2 whose layers are named like torchvision's, so its ImageNet checkpoint loads as is."""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import nn

from sscma.models.utils.feature_info import FeatureInfo
from sscma.registry import MODELS


def make_divisible(value: float, divisor: int = 8, min_value: Optional[int] = None) -> int:
    """Round ``value`` to a multiple of ``divisor`` without going down by more than 10 %."""
    min_value = min_value or divisor
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


class TFSameConv2d(nn.Conv2d):
    """Conv2d padded like TensorFlow's ``padding='same'``: for stride 2 on an even size, one row/column at the
    bottom/right only (Keras' MobileNetV2 also pads so before its stride-2 depthwise convs), instead of
    PyTorch's one on each side. The weights are those of a plain ``nn.Conv2d`` (same state-dict keys).

    The pads depend on the input size, which torch.fx's symbolic tracing (MCT, for the IMX500) does not know:
    :meth:`with_fixed_padding` gives the layers for one input size."""

    def pads_for(self, hw: Sequence[int]) -> List[int]:
        """``F.pad`` pads (left, right, top, bottom) for an input of height and width ``hw``."""
        pads = []
        for size, k, s in zip(hw[::-1], self.kernel_size[::-1], self.stride[::-1]):  # W, then H
            total = max(k - s, 0) if int(size) % s == 0 else max(k - int(size) % s, 0)
            pads += [total // 2, total - total // 2]
        return pads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = self.pads_for(x.shape[-2:])
        return super().forward(F.pad(x, pads) if any(pads) else x)

    def with_fixed_padding(self, hw: Sequence[int]) -> nn.Sequential:
        """``ZeroPad2d`` + a plain ``nn.Conv2d`` sharing these weights: the same function for inputs of size
        ``hw``, in layers torch.fx keeps whole."""
        conv = nn.Conv2d(self.in_channels, self.out_channels, self.kernel_size, self.stride, 0, self.dilation,
                         self.groups, self.bias is not None)
        conv.weight, conv.bias = self.weight, self.bias
        return nn.Sequential(nn.ZeroPad2d(self.pads_for(hw)), conv)


class ConvBNReLU6(nn.Sequential):
    """Conv2d + BatchNorm2d + ReLU6 (torchvision's ``Conv2dNormActivation`` layout)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 groups: int = 1, tf_padding: bool = False) -> None:
        if tf_padding and stride > 1:
            conv = TFSameConv2d(in_channels, out_channels, kernel_size, stride, 0, groups=groups, bias=False)
        else:
            conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, (kernel_size - 1) // 2, groups=groups,
                             bias=False)
        super().__init__(conv, nn.BatchNorm2d(out_channels), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """Expand (1x1) -> depthwise (3x3) -> project (1x1, linear), with a skip when shapes allow.

    ``hidden`` (the expanded width) defaults to ``in_channels * expand_ratio``; a pruned network gives it.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand_ratio: int,
                 hidden: Optional[int] = None, residual: Optional[bool] = None, tf_padding: bool = False) -> None:
        super().__init__()
        hidden = int(round(in_channels * expand_ratio)) if hidden is None else int(hidden)
        self.use_res_connect = stride == 1 and in_channels == out_channels if residual is None else residual
        if self.use_res_connect and (stride != 1 or in_channels != out_channels):
            raise ValueError(f'a skip connection needs stride 1 and in_channels == out_channels, got stride {stride}, '
                             f'{in_channels} -> {out_channels}')
        layers: List[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU6(in_channels, hidden, kernel_size=1))
        layers += [
            ConvBNReLU6(hidden, hidden, stride=stride, groups=hidden, tf_padding=tf_padding),
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
        channels (Sequence, optional): Explicit widths, one entry per layer of ``features``: an int for the stem
            and the final 1x1 conv, ``[hidden, out]`` for each inverted residual (``hidden`` = its expanded
            width). ``tools/prune.py`` writes this for a pruned network; ``widen_factor`` is then ignored for
            widths. A block with a skip connection must keep ``out`` equal to its input width, and a block
            without expansion (the first) has ``hidden`` equal to its input width. Defaults to None.
        tf_padding (bool): Pad stride-2 convolutions like TensorFlow's ``'same'`` (bottom/right first), as
            Keras' MobileNetV2 does, so that converted Keras weights give the same features. It also keeps the
            int8 TFLite file free of the padded copies (``PAD``) onnx2tf writes before PyTorch-padded stride-2
            convs, which set the TFLM arena at large inputs. Defaults to False.
        expand_ratios (Sequence[int], optional): Expand ratios of the first ``len(expand_ratios)`` stages,
            replacing the paper's (1, 6, 6, 6, 6, 6, 6); later stages keep theirs. The expanded tensors of
            stage 1 (at 1/2 of the input size) set the int8 arena of a stride-8 FOMO: ``(1, 4)`` cuts it from
            244,000 to 166,624 bytes at 96x96 (``configs/fomo/fomo_mobnetv2_lowmem.py``). Defaults to None.
        init_cfg (dict, optional): mmengine initialisation config, e.g. a ``Pretrained`` checkpoint.
    """
    # expand ratio, channels, blocks, first stride
    arch_settings = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1],
                     [6, 160, 3, 2], [6, 320, 1, 1]]

    def __init__(self, widen_factor: float = 1.0, out_indices: Sequence[int] = (7, ), in_channels: int = 3,
                 frozen_stages: int = -1, norm_eval: bool = False,
                 channels: Optional[Sequence[Union[int, Sequence[int]]]] = None, tf_padding: bool = False,
                 expand_ratios: Optional[Sequence[int]] = None, init_cfg: Optional[dict] = None) -> None:
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
        self.arch = self.stage_settings(expand_ratios)

        self.tf_padding = tf_padding
        widths = self.nominal_channels(widen_factor, out_indices, expand_ratios)
        if channels is not None:
            widths = self._check_channels(channels, widths)
        self.channels = widths

        skips = self._skip_connections(self.nominal_channels(widen_factor, out_indices))
        width = widths[0]
        features: List[nn.Module] = [ConvBNReLU6(in_channels, width, stride=2, tf_padding=tf_padding)]
        self.stage_ends: List[int] = []  # index into ``features`` of each stage's last layer
        self.out_channels: List[int] = []
        for t, c, n, s in self.arch[:max(out_indices) + 1]:
            for i in range(n):
                hidden, out = widths[len(features)]
                features.append(InvertedResidual(width, out, s if i == 0 else 1, t, hidden=hidden,
                                                 residual=skips[len(features)], tf_padding=tf_padding))
                width = out
            self.stage_ends.append(len(features) - 1)
            self.out_channels.append(width)
        if 7 in out_indices:
            last = widths[len(features)]
            features.append(ConvBNReLU6(width, last, kernel_size=1))
            self.stage_ends.append(len(features) - 1)
            self.out_channels.append(last)
        self.features = nn.Sequential(*features)
        self._freeze_stages()

    @classmethod
    def stage_settings(cls, expand_ratios: Optional[Sequence[int]] = None) -> List[List[int]]:
        """``arch_settings`` with the first stages' expand ratios replaced by ``expand_ratios``."""
        ratios = list(expand_ratios or [])
        if len(ratios) > len(cls.arch_settings) or not all(
                isinstance(t, int) and not isinstance(t, bool) and t >= 1 for t in ratios):
            raise ValueError(f'expand_ratios={expand_ratios!r} must be at most {len(cls.arch_settings)} integers >= 1')
        return [[ratios[i] if i < len(ratios) else t, c, n, s] for i, (t, c, n, s) in enumerate(cls.arch_settings)]

    @classmethod
    def nominal_channels(cls, widen_factor: float, out_indices: Sequence[int] = (7, ),
                         expand_ratios: Optional[Sequence[int]] = None) -> List:
        """The ``channels`` list that ``widen_factor`` gives (stem, ``[hidden, out]`` per block, final conv)."""
        width = make_divisible(32 * widen_factor)
        widths: List = [width]
        for t, c, n, _ in cls.stage_settings(expand_ratios)[:max(out_indices) + 1]:
            out = make_divisible(c * widen_factor)
            for _ in range(n):
                widths.append([int(round(width * t)), out])
                width = out
        if 7 in out_indices:
            widths.append(make_divisible(1280 * max(1.0, widen_factor)))
        return widths

    def _check_channels(self, channels: Sequence, nominal: List) -> List:
        """Validate explicit ``channels`` against the layout of ``nominal`` and return them as plain lists."""
        def fail(why: str) -> None:
            raise ValueError(f'channels={list(channels)!r}: {why} (expected the layout of {nominal!r})')

        channels = [list(c) if isinstance(c, (list, tuple)) else c for c in channels]
        if len(channels) != len(nominal):
            fail(f'{len(channels)} entries for a network of {len(nominal)} layers (out_indices={self.out_indices})')
        for i, (got, want) in enumerate(zip(channels, nominal)):
            values = got if isinstance(got, list) else [got]
            if isinstance(got, list) != isinstance(want, list) or len(values) != (2 if isinstance(want, list) else 1):
                fail(f'entry {i} is {got!r}; layer {i} takes {"[hidden, out]" if isinstance(want, list) else "an int"}')
            if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
                fail(f'entry {i} is {got!r}; widths must be positive integers')
        skips = self._skip_connections(nominal)
        width, layer = channels[0], 1
        for t, _, n, _ in self.arch[:max(self.out_indices) + 1]:
            for _ in range(n):
                hidden, out = channels[layer]
                if t == 1 and hidden != width:
                    fail(f'block {layer} has no expansion, so its hidden width must equal its input {width}')
                if skips[layer] and out != width:
                    fail(f'block {layer} has a skip connection, so its output must equal its input {width}')
                width, layer = out, layer + 1
        return channels

    @classmethod
    def _skip_connections(cls, nominal: List) -> List[bool]:
        """Whether each layer of ``features`` adds its input (stride 1, same width in the un-pruned network).

        Taken from the nominal widths so that a pruned network keeps exactly the skips it was trained with,
        even where pruning makes a block's input and output widths equal by chance.
        """
        skips, width, layer = [False], nominal[0], 1
        for _, _, n, s in cls.arch_settings:
            for b in range(n):
                if layer >= len(nominal) or not isinstance(nominal[layer], list):
                    return skips + [False] * (len(nominal) - len(skips))
                out = nominal[layer][1]
                skips.append((s if b == 0 else 1) == 1 and out == width)
                width, layer = out, layer + 1
        return skips + [False] * (len(nominal) - len(skips))

    @classmethod
    def stage_strides(cls) -> List[int]:
        """Input pixels per cell after each stage 0-7: the stem's stride 2 times the strides of the stages so far
        (the last stage, the 1x1 convolution, keeps the stride of the one before)."""
        strides, stride = [], 2
        for *_, s in cls.arch_settings:
            stride *= s
            strides.append(stride)
        return strides + strides[-1:]

    @property
    def feature_info(self) -> List[FeatureInfo]:
        """Channels and stride of each returned feature map, in ``out_indices`` order."""
        strides = self.stage_strides()
        return [FeatureInfo(self.out_channels[i], strides[i]) for i in self.out_indices]

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
