"""Fake int8 quantisation of Conv2d / Linear layers for quantisation-aware training (QAT).

Each converted layer rounds its weight to int8 per output channel (symmetric, scale = max|w| / 127) and its
input to int8 per tensor (asymmetric, range tracked by an exponential moving average) in the forward pass,
with straight-through gradients (``torch.fake_quantize_per_*_affine``). That is what the int8 exporters
do to the trained network: per-channel weights (a BatchNorm folded into them only rescales each channel, so
per-channel rounding before folding is the same rounding) and per-tensor activations.

Conversion changes each layer's class in place and adds only non-persistent buffers, so the state dict keeps
the float model's keys: a QAT checkpoint loads into the plain config for ``tools/test.py`` and
``tools/export.py``, which then calibrates int8 on the QAT-trained weights.
"""
from typing import List

import torch
import torch.nn.functional as F
from torch import nn

QMIN, QMAX = -128, 127


def fake_quantize_weight(weight: torch.Tensor) -> torch.Tensor:
    """Symmetric per-output-channel int8 rounding of a conv / linear weight (straight-through gradient)."""
    flat = weight.detach().reshape(weight.shape[0], -1)
    scale = (flat.abs().amax(dim=1) / QMAX).clamp(min=1e-8).float()
    zero_point = torch.zeros(weight.shape[0], dtype=torch.int32, device=weight.device)
    return torch.fake_quantize_per_channel_affine(weight, scale, zero_point, 0, QMIN, QMAX)


class _InputFakeQuant:
    """Mixin: per-tensor fake quantisation of the layer input with an EMA-tracked range."""

    def _init_fake_quant(self, momentum: float) -> None:
        device = self.weight.device
        self.register_buffer('act_min', torch.zeros((), device=device), persistent=False)
        self.register_buffer('act_max', torch.zeros((), device=device), persistent=False)
        self.register_buffer('act_seen', torch.zeros((), dtype=torch.bool, device=device), persistent=False)
        self.fq_momentum = momentum

    def _fake_quantize_input(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            with torch.no_grad():
                lo, hi = x.detach().min().float(), x.detach().max().float()
                if not bool(self.act_seen):
                    self.act_min.copy_(lo)
                    self.act_max.copy_(hi)
                    self.act_seen.fill_(True)
                else:
                    self.act_min.lerp_(lo, self.fq_momentum)
                    self.act_max.lerp_(hi, self.fq_momentum)
        if not bool(self.act_seen):
            return x
        lo, hi = torch.minimum(self.act_min, torch.zeros_like(self.act_min)), \
            torch.maximum(self.act_max, torch.zeros_like(self.act_max))  # the range holds 0 exactly
        scale = float(((hi - lo) / (QMAX - QMIN)).clamp(min=1e-8))
        zero_point = int(torch.clamp(QMIN - torch.round(lo / scale), QMIN, QMAX))
        return torch.fake_quantize_per_tensor_affine(x, scale, zero_point, QMIN, QMAX)


class FakeQuantConv2d(_InputFakeQuant, nn.Conv2d):
    """``nn.Conv2d`` computing with int8-rounded weight and input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(self._fake_quantize_input(x), fake_quantize_weight(self.weight), self.bias)


class FakeQuantLinear(_InputFakeQuant, nn.Linear):
    """``nn.Linear`` computing with int8-rounded weight and input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self._fake_quantize_input(x), fake_quantize_weight(self.weight), self.bias)


_FAKE_QUANT = {nn.Conv2d: FakeQuantConv2d, nn.Linear: FakeQuantLinear}


def convert_to_fake_quant(model: nn.Module, momentum: float = 0.01) -> List[str]:
    """Turn every ``nn.Conv2d`` / ``nn.Linear`` of ``model`` into its fake-quantised version in place.

    Returns the names of the converted layers. Layers of other (sub)classes are left alone.
    """
    converted = []
    for name, module in model.named_modules():
        cls = _FAKE_QUANT.get(type(module))
        if cls is None:
            continue
        module.__class__ = cls
        module._init_fake_quant(momentum)
        converted.append(name)
    return converted
