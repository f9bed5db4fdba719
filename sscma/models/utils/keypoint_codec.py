"""Keypoint regression targets: pixels <-> coordinates normalised by the network input size."""
from typing import Sequence, Union

import numpy as np
import torch

Array = Union[np.ndarray, torch.Tensor]


def _wh(img_shape: Sequence[int], like: Array) -> Array:
    h, w = float(img_shape[0]), float(img_shape[1])
    if isinstance(like, torch.Tensor):
        return like.new_tensor([w, h])
    return np.asarray([w, h], dtype=np.float64)


def encode_keypoints(keypoints: Array, img_shape: Sequence[int]) -> Array:
    """Pixels of the network input ``(..., 2)`` (x, y; top-left corner = 0) -> ``[0, 1]`` by ``(w, h)``.

    ``img_shape`` is ``(h, w)`` of the network input (mmcv's ``img_shape``).
    """
    return keypoints[..., :2] / _wh(img_shape, keypoints)


def decode_keypoints(normalised: Array, img_shape: Sequence[int],
                     scale_factor: Sequence[float] = (1.0, 1.0)) -> Array:
    """Normalised ``(..., 2)`` -> pixels of the original image (``scale_factor`` = input px per original px)."""
    px = normalised[..., :2] * _wh(img_shape, normalised)
    sx, sy = float(scale_factor[0]), float(scale_factor[1])
    scale = normalised.new_tensor([sx, sy]) if isinstance(normalised, torch.Tensor) else np.asarray([sx, sy])
    return px / scale
