"""The graph that gets exported: raw pixels in, the model's ``forward(mode='tensor')`` out.

Devices feed the exported model the image as it comes from the camera, resized to the network input:
float NCHW, values 0..255, channels in the order the model was trained on after its data preprocessor's
colour conversion (RGB for the shipped configs, which load BGR with OpenCV and convert). The data
preprocessor's ``(x - mean) / std`` is therefore folded into the graph; centroid decoding and other
post-processing stay outside it.
"""
import copy
from typing import Optional, Tuple

import torch
from torch import nn


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


class RawInputWrapper(nn.Module):
    """``model(((x - mean) / std), mode='tensor')`` for raw-pixel input ``x``.

    Args:
        model (nn.Module): An mmengine ``BaseModel`` (``Fomo``, ``mmpretrain.ImageClassifier`` ...).
        mean, std (Tensor, optional): Per-channel normalisation of the model's data preprocessor.
    """

    def __init__(self, model: nn.Module, mean: Optional[torch.Tensor] = None,
                 std: Optional[torch.Tensor] = None) -> None:
        super().__init__()
        self.model = model
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
        out = self.model(x, mode='tensor')
        if is_dense_detector(self.model):
            return pack_detections(out, images.shape[-2:])
        if isinstance(out, (tuple, list)):  # single-output models only (FOMO, classifiers)
            out = out[-1]
        return out.float()


def is_dense_detector(model: nn.Module) -> bool:
    """An mmdet single-stage detector whose head decodes per-level class / box maps (RTMDet, YOLOX, ...)."""
    head = getattr(model, 'bbox_head', None)
    return head is not None and hasattr(head, 'predict_by_feat') and hasattr(head, 'prior_generator')


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


def wrap_for_export(model: nn.Module) -> RawInputWrapper:
    """:class:`RawInputWrapper` around ``model`` with its own preprocessor's mean/std."""
    mean, std = preprocessor_norm(model.data_preprocessor)
    return RawInputWrapper(model, mean, std).eval()
