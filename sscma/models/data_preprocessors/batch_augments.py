"""Training augmentations applied to a whole batch of tensors, boxes included, inside the data preprocessor.

Each one draws its parameters per image from the same distributions as the albumentations transform of the
same name (``Affine``, ``HorizontalFlip``, mmpretrain's ``RandomResizedCrop`` here;
``RandomBrightnessContrast``, ``HueSaturationValue``, ``OneOf([GaussianBlur, GaussNoise])`` in
:mod:`.colour_augments`) and applies the same formula, but to all images of the batch in a few torch
operations instead of per image in Python (0.7-1.2 ms per 96x96 image through albumentations' box
bookkeeping on a 2-core machine; see docs/benchmarks.md). Inputs are float ``(N, C, H, W)`` pixels in 0-255,
RGB for colour, changed in place. Each geometric augmentation gives every picked image a ``(2, 3)`` pixel map
and :func:`~.geometry.move_geometry` moves the ground truth with it: boxes (xyxy, network pixels), keypoints
and any field a task registers (:mod:`.geometry`). ``tests/test_models/test_batch_augments.py`` compares each
one with albumentations (or mmpretrain) at fixed parameters.
"""
import math
from typing import List, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from sscma.registry import MODELS
from sscma.utils.errors import ConfigError

from .geometry import move_geometry, warp_affine

Batch = Tuple[torch.Tensor, List]


def _range(name: str, value, symmetric: bool = False) -> Tuple[float, float]:
    """``0.25`` -> ``(-0.25, 0.25)`` where albumentations makes a scalar symmetric, else ``(v, v)``."""
    if isinstance(value, (int, float)):
        return (-float(value), float(value)) if symmetric else (float(value), float(value))
    if isinstance(value, Sequence) and len(value) == 2 and value[0] <= value[1]:
        return float(value[0]), float(value[1])
    raise ConfigError(f'{name}={value!r}: expected a number or a (low, high) pair with low <= high')


def _probability(name: str, p: float) -> float:
    if not 0 <= p <= 1:
        raise ConfigError(f'{name}: p={p!r} must be in [0, 1]')
    return float(p)


def _draw(shape) -> np.ndarray:
    """Uniform [0, 1) draws from torch's generator (which mmengine's ``randomness.seed`` seeds), as float64
    numpy: the per-image parameters are a handful of numbers, and a numpy operation on them costs ~1 us where
    a torch one costs 5-20 us on 2 cores."""
    return torch.rand(shape, dtype=torch.float64).numpy()


def _uniform(n: int, low_high: Tuple[float, float]) -> np.ndarray:
    low, high = low_high
    return _draw(n) * (high - low) + low


def _as(values: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(values).to(device=like.device, dtype=like.dtype)


def _on_rows(images: torch.Tensor, rows: torch.Tensor, fn) -> torch.Tensor:
    """``images`` with ``rows`` replaced, in place, by ``fn`` of a copy of them (``index_select`` /
    ``index_copy_``)."""
    return images.index_copy_(0, rows, fn(images.index_select(0, rows)))


class PerImageAugment(nn.Module):
    """Base of the batch augmentations: each image of a batch is picked with probability ``p``; ``augment``
    gets the picked images (``inputs[idx]``, a copy it may change in place), returns them augmented and moves
    their boxes. Picking and writing back use ``index_select`` / ``index_copy_``: ``inputs[idx]`` took ~170 us
    for 11 96x96 images on 2 cores, ``index_select`` ~20 us."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = _probability(type(self).__name__, p)

    def forward(self, inputs: torch.Tensor, data_samples: List) -> Batch:
        chosen = np.flatnonzero(_draw(len(inputs)) < self.p)
        idx = torch.from_numpy(chosen).to(inputs.device)
        if len(chosen) == len(inputs):  # every image: no picking, no writing back
            inputs = self.augment(inputs, idx, data_samples)
        elif len(chosen):
            _on_rows(inputs, idx, lambda picked: self.augment(picked, idx, data_samples))
        return inputs, data_samples

    def augment(self, images: torch.Tensor, idx: torch.Tensor, data_samples: List) -> torch.Tensor:
        raise NotImplementedError


@MODELS.register_module()
class BatchAffine(PerImageAugment):
    """albumentations' ``Affine`` (scale, translate_percent, rotate, shear in degrees with x and y drawn
    apart; bilinear, black border) on a batch.

    Boxes become the axis-aligned box around their four moved corners (albumentations' ``largest_box``);
    a box that keeps less than ``min_visibility`` of its area inside the image, or ends narrower or lower
    than ``min_size`` pixels, is dropped with its label.
    """

    def __init__(self, scale=(0.8, 1.2), translate_percent=(-0.1, 0.1), rotate=(-10, 10), shear=0.0,
                 p: float = 0.5, min_visibility: float = 0.3, min_size: float = 1.0) -> None:
        super().__init__(p)
        self.scale = _range('BatchAffine scale', scale)
        self.translate = _range('BatchAffine translate_percent', translate_percent, symmetric=True)
        self.rotate = _range('BatchAffine rotate', rotate, symmetric=True)
        self.shear = _range('BatchAffine shear', shear)
        self.min_visibility, self.min_size = min_visibility, min_size

    def sample_matrices(self, k: int, h: int, w: int) -> np.ndarray:
        """``(k, 2, 3)`` forward maps in pixel-edge coordinates, as albumentations builds them."""
        sx, sy = _uniform(k, self.scale), _uniform(k, self.scale)
        tx = np.trunc(_uniform(k, self.translate) * w)  # albumentations: int(percent * width)
        ty = np.trunc(_uniform(k, self.translate) * h)
        angle = np.radians(_uniform(k, self.rotate))
        if self.shear == (0.0, 0.0):
            return affine_matrices(sx, sy, tx, ty, angle, h, w)
        shear_x = -np.radians(_uniform(k, self.shear))  # albumentations negates the drawn shear
        shear_y = -np.radians(_uniform(k, self.shear))
        return affine_matrices(sx, sy, tx, ty, angle, h, w, shear_x, shear_y)

    def augment(self, images: torch.Tensor, idx: torch.Tensor, data_samples: List) -> torch.Tensor:
        h, w = images.shape[-2:]
        matrices = self.sample_matrices(len(idx), h, w)
        move_geometry(data_samples, idx.tolist(), matrices, h, w, (self.min_visibility, self.min_size))
        return warp_affine(images, matrices)


def affine_matrices(sx, sy, tx, ty, angle, h: int, w: int, shear_x=None, shear_y=None) -> np.ndarray:
    """``(k, 2, 3)`` float64 maps: scale, rotate and shear about the image centre, then translate
    (albumentations' matrix, pixel-edge coords): ``x' = Sh R S (x - c) + c + t`` with
    ``R = [[cos, sin], [-sin, cos]]`` and ``Sh = [[1, tan(shear_x)], [tan(shear_y), 1]]`` (angles in radians;
    each argument a number or a ``(k,)`` array)."""
    sx, sy, tx, ty, angle = np.broadcast_arrays(*(np.atleast_1d(np.asarray(v, np.float64))
                                                  for v in (sx, sy, tx, ty, angle)))
    cos, sin = np.cos(angle), np.sin(angle)
    a = np.stack([np.stack([cos * sx, sin * sy], -1), np.stack([-sin * sx, cos * sy], -1)], -2)
    if shear_x is not None:  # Sh @ a, written out
        kx, ky = (np.broadcast_to(np.tan(np.asarray(v, np.float64)), angle.shape) for v in (shear_x, shear_y))
        a = np.stack([a[:, 0] + kx[:, None] * a[:, 1], ky[:, None] * a[:, 0] + a[:, 1]], 1)
    centre = np.array([w / 2, h / 2])
    shift = centre + np.stack([tx, ty], -1) - (a * centre).sum(-1)
    return np.concatenate([a, shift[..., None]], -1)


@MODELS.register_module()
class BatchRandomResizedCrop(PerImageAugment):
    """mmpretrain's ``RandomResizedCrop`` on a batch, every image: a crop of ``crop_ratio_range`` of the area
    and an aspect ratio drawn log-uniformly from ``aspect_ratio_range`` (``max_attempts`` draws, the first
    that fits; else a central crop), resized back to the batch's size (bilinear). Where the crop touches the
    image's edge, the edge pixel is repeated as cv2 does; inside the image, the bilinear taps just outside
    the crop read the image's own pixels there, not the crop's edge again.

    The crop is taken from the images as they reach the preprocessor, at the network input size: on data
    stored larger, that is a resize then a crop rather than a crop of the original (``crop_ratio_range``
    (0.75, 1) upsamples the crop by at most 1.15x).
    """

    def __init__(self, crop_ratio_range=(0.08, 1.0), aspect_ratio_range=(3. / 4., 4. / 3.),
                 max_attempts: int = 10) -> None:
        super().__init__(1.0)
        self.crop_ratio = _range('BatchRandomResizedCrop crop_ratio_range', crop_ratio_range)
        self.aspect_ratio = _range('BatchRandomResizedCrop aspect_ratio_range', aspect_ratio_range)
        if not (0 < self.crop_ratio[1] <= 1 and self.aspect_ratio[0] > 0):
            raise ConfigError(f'BatchRandomResizedCrop: crop_ratio_range={crop_ratio_range!r} must be within (0, 1] '
                              f'and aspect_ratio_range={aspect_ratio_range!r} positive')
        if not isinstance(max_attempts, int) or max_attempts < 0:
            raise ConfigError(f'BatchRandomResizedCrop: max_attempts={max_attempts!r} must be an integer >= 0')
        self.max_attempts = max_attempts

    def sample_crops(self, k: int, h: int, w: int) -> np.ndarray:
        """``(k, 4)`` crops ``(x0, y0, width, height)`` in whole pixels, drawn as mmpretrain draws them."""
        n = max(self.max_attempts, 1)
        area = (_draw((k, n)) * (self.crop_ratio[1] - self.crop_ratio[0]) + self.crop_ratio[0]) * (h * w)
        log_low, log_high = math.log(self.aspect_ratio[0]), math.log(self.aspect_ratio[1])
        ratio = np.exp(_draw((k, n)) * (log_high - log_low) + log_low)
        cw, ch = np.round(np.sqrt(area * ratio)), np.round(np.sqrt(area / ratio))  # half to even, as round()
        fits = (cw > 0) & (cw <= w) & (ch > 0) & (ch <= h) & (self.max_attempts > 0)
        first = fits.argmax(1)[:, None]
        cw, ch = np.take_along_axis(cw, first, 1)[:, 0], np.take_along_axis(ch, first, 1)[:, 0]
        found = fits.any(1)
        # mmpretrain's fallback: the central crop nearest in aspect ratio
        in_ratio = w / h
        if in_ratio < self.aspect_ratio[0]:
            fallback = (w, round(w / self.aspect_ratio[0]))
        elif in_ratio > self.aspect_ratio[1]:
            fallback = (round(h * self.aspect_ratio[1]), h)
        else:
            fallback = (w, h)
        cw, ch = np.where(found, cw, fallback[0]), np.where(found, ch, fallback[1])
        offsets = _draw((2, k))
        x0 = np.where(found, np.floor(offsets[0] * (w - cw + 1)), np.floor((w - cw) / 2))
        y0 = np.where(found, np.floor(offsets[1] * (h - ch + 1)), np.floor((h - ch) / 2))
        return np.stack([x0, y0, cw, ch], -1)

    def augment(self, images: torch.Tensor, idx: torch.Tensor, data_samples: List) -> torch.Tensor:
        """The crops resized back; boxes (and every geometric field) follow, boxes left with no pixel in the
        crop dropped."""
        h, w = images.shape[-2:]
        matrices = crop_matrices(self.sample_crops(len(idx), h, w), h, w)
        move_geometry(data_samples, idx.tolist(), matrices, h, w, (0.0, 1.0))
        return warp_affine(images, matrices, padding_mode='border')


def crop_matrices(crops, h: int, w: int) -> np.ndarray:
    """``(k, 2, 3)`` maps taking each crop ``(x0, y0, width, height)`` (a ``(k, 4)`` array) to the whole
    ``h`` x ``w`` image: ``x' = (x - x0) * w / width``."""
    x0, y0, cw, ch = np.asarray(crops, np.float64).T
    zero = np.zeros_like(x0)
    sx, sy = w / cw, h / ch
    return np.stack([np.stack([sx, zero, -x0 * sx], -1), np.stack([zero, sy, -y0 * sy], -1)], -2)


def resize_crops(images: torch.Tensor, crops) -> torch.Tensor:
    """Each image's crop ``(x0, y0, width, height)`` (a ``(k, 4)`` array) resized to the image's size,
    bilinear (cv2.resize)."""
    h, w = images.shape[-2:]
    return warp_affine(images, crop_matrices(crops, h, w), padding_mode='border')


@MODELS.register_module()
class BatchHorizontalFlip(PerImageAugment):
    """albumentations' ``HorizontalFlip`` on a batch: images mirrored, boxes ``x -> width - x``."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__(p)

    def augment(self, images: torch.Tensor, idx: torch.Tensor, data_samples: List) -> torch.Tensor:
        h, w = images.shape[-2:]
        mirror = np.broadcast_to(np.array([[-1.0, 0.0, w], [0.0, 1.0, 0.0]]), (len(idx), 2, 3))
        move_geometry(data_samples, idx.tolist(), mirror, h, w)
        return images.flip(-1)
