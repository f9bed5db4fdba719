"""The graph that gets exported: raw pixels in, the model's ``forward(mode='tensor')`` out.

Devices feed the exported model the image as it comes from the camera, resized to the network input:
float NCHW, values 0..255, channels in the order the model was trained on after its data preprocessor's
colour conversion (RGB for the shipped configs, which load BGR with OpenCV and convert). The data
preprocessor's ``(x - mean) / std`` is therefore folded into the graph; centroid decoding and other
post-processing stay outside it. ``nn.Hardsigmoid`` (mmdet's ``ChannelAttention``) is traced as the equal
``relu6(x + 3) / 6``: its ONNX ``HardSigmoid`` becomes TFLite's ``RELU_0_TO_1``, which TFLite Micro has no kernel for.
"""
import copy
from typing import Optional, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from sscma.tasks import task_of


def preprocessor_norm(preprocessor: nn.Module) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
    """``(mean, std)`` as ``(C,)`` tensors of an mmengine/mmdet/mmpretrain image preprocessor, or ``(None, None)``
    when it does not normalise."""
    if not getattr(preprocessor, '_enable_normalize', False):
        return None, None
    return preprocessor.mean.detach().flatten().cpu().clone(), preprocessor.std.detach().flatten().cpu().clone()


def converts_bgr_to_rgb(preprocessor: nn.Module) -> bool:
    """Whether the preprocessor swaps the channel order of 3-channel images (BGR from OpenCV -> RGB)."""
    return bool(getattr(preprocessor, '_channel_conversion', False) or getattr(preprocessor, 'to_rgb', False))


def input_channel_order(preprocessor: nn.Module, channels: int) -> str:
    """Channel order the exported graph expects: 'RGB', 'BGR' or 'GRAY'."""
    if channels == 1:
        return 'GRAY'
    return 'RGB' if converts_bgr_to_rgb(preprocessor) else 'BGR'


def raw_pixel_preprocessor(preprocessor: nn.Module) -> nn.Module:
    """A copy of ``preprocessor`` that still converts colours, casts, pads and stacks, but does not normalise.

    Its ``inputs`` are exactly what an exported graph (:class:`RawInputWrapper`) takes.
    """
    raw = copy.deepcopy(preprocessor)
    raw._enable_normalize = False
    return raw


class Relu6Sigmoid(nn.Module):
    """``nn.Hardsigmoid`` written as ``relu6(x + 3) / 6`` (the same function; exports as ADD, RELU6, MUL)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(x + 3.0) / 6.0


def with_micro_activations(model: nn.Module) -> nn.Module:
    """``model`` with every ``nn.Hardsigmoid`` replaced, in place, by :class:`Relu6Sigmoid`."""
    for module in list(model.modules()):
        for name, child in module.named_children():
            if isinstance(child, nn.Hardsigmoid):
                setattr(module, name, Relu6Sigmoid())
    return model


class RawInputWrapper(nn.Module):
    """``model(((x - mean) / std), mode='tensor')`` for raw-pixel input ``x``, as the model's task
    shapes it into one tensor (:meth:`~sscma.tasks.Task.graph_output`).

    Args:
        model (nn.Module): An mmengine ``BaseModel`` (``Fomo``, ``mmpretrain.ImageClassifier`` ...).
        mean, std (Tensor, optional): Per-channel normalisation of the model's data preprocessor.
    """

    def __init__(self, model: nn.Module, mean: Optional[torch.Tensor] = None,
                 std: Optional[torch.Tensor] = None) -> None:
        super().__init__()
        self.model = with_micro_activations(model)
        self.adapter = task_of(model)  # what the graph returns (e.g. RTMDet's packed levels)
        self.normalize = mean is not None
        if self.normalize:
            self.register_buffer('mean', mean.float().view(1, -1, 1, 1))
            self.register_buffer('std', std.float().view(1, -1, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # float32 in and out; a half-precision copy (``wrapper.half()``) computes in float16 inside.
        dtype = next(self.model.parameters()).dtype
        x = images.to(dtype)
        if self.normalize:
            x = (x - self.mean) / self.std
        return self.adapter.graph_output(self.model, self.model(x, data_samples=None, mode='tensor'), images)


def wrap_for_export(model: nn.Module) -> RawInputWrapper:
    """:class:`RawInputWrapper` around ``model`` with its own preprocessor's mean/std."""
    mean, std = preprocessor_norm(model.data_preprocessor)
    return RawInputWrapper(model, mean, std).eval()
