"""Colour batch augmentations (brightness / contrast, hue / saturation / value, blur or noise): the pixels change,
the boxes stay. The shared machinery and the conventions are in :mod:`.batch_augments`."""
from typing import List

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from sscma.registry import MODELS
from sscma.utils.errors import ConfigError
from .batch_augments import Batch, PerImageAugment, _as, _draw, _on_rows, _range, _uniform


@MODELS.register_module()
class BatchBrightnessContrast(PerImageAugment):
    """albumentations' ``RandomBrightnessContrast`` (``brightness_by_max=True``) on a batch:
    ``x * (1 + c) + 255 * b``, clipped to 0-255, with ``c`` and ``b`` drawn per image."""

    def __init__(self, brightness_limit=0.2, contrast_limit=0.2, p: float = 0.5) -> None:
        super().__init__(p)
        self.brightness = _range('BatchBrightnessContrast brightness_limit', brightness_limit, symmetric=True)
        self.contrast = _range('BatchBrightnessContrast contrast_limit', contrast_limit, symmetric=True)

    def forward(self, inputs: torch.Tensor, data_samples: List) -> Batch:
        """The whole batch at once, the images not chosen at ``c = b = 0`` (unchanged, pixels being in
        0-255): three operations on 16 images cost less than picking and writing back the chosen ones."""
        chosen = _draw(len(inputs)) < self.p
        if chosen.any():
            k = int(chosen.sum())
            alpha, beta = np.ones(len(inputs)), np.zeros(len(inputs))
            alpha[chosen] = 1 + _uniform(k, self.contrast)
            beta[chosen] = 255 * _uniform(k, self.brightness)
            inputs.mul_(_as(alpha, inputs)[:, None, None, None]).add_(_as(beta, inputs)[:, None, None, None])
            inputs.clamp_(0, 255)
        return inputs, data_samples


@MODELS.register_module()
class BatchHueSaturationValue(PerImageAugment):
    """albumentations' ``HueSaturationValue`` on a batch, in its uint8 units: hue shifted by ``h`` of cv2's
    180 steps (2 degrees each), saturation and value by ``s`` / ``v`` of 255; grey pixels stay grey. On one
    channel only the value shift applies.

    The shifts are drawn for the whole batch at once and applied as albumentations' ``shift_hsv`` does (see
    :func:`shift_hsv_batch`), on the pixels rounded to uint8 first as albumentations' pipeline holds them.
    On a GPU the chosen images make the round trip through the CPU.
    """

    def __init__(self, hue_shift_limit=20, sat_shift_limit=30, val_shift_limit=20, p: float = 0.5) -> None:
        super().__init__(p)
        self.hue = _range('BatchHueSaturationValue hue_shift_limit', hue_shift_limit, symmetric=True)
        self.sat = _range('BatchHueSaturationValue sat_shift_limit', sat_shift_limit, symmetric=True)
        self.val = _range('BatchHueSaturationValue val_shift_limit', val_shift_limit, symmetric=True)

    def augment(self, images: torch.Tensor, idx: torch.Tensor, data_samples: List) -> torch.Tensor:
        k = len(idx)
        hue, sat, val = (_uniform(k, r) for r in (self.hue, self.sat, self.val))
        if images.shape[1] != 3:
            return images.add_(_as(val, images)[:, None, None, None]).clamp_(0, 255)
        # HWC float, then cv2's rounding (half to even, as torch.round) and saturation to uint8: 0.1 ms
        # where torch's round / clamp / uint8 / contiguous took 0.23 ms for 7 96x96 images
        hwc = images.permute(0, 2, 3, 1).contiguous().cpu().numpy()
        _, h, w, c = hwc.shape
        np.maximum(hwc, 0, out=hwc)  # convertScaleAbs takes |x|; pixels below 0 become 0, as clamping would
        pixels = cv2.convertScaleAbs(hwc.reshape(k * h, w * c)).reshape(k, h, w, c)
        shifted = shift_hsv_batch(pixels, hue, sat, val)
        return torch.from_numpy(shifted).permute(0, 3, 1, 2).to(device=images.device, dtype=images.dtype)


def shift_hsv_batch(pixels: np.ndarray, hue: np.ndarray, sat: np.ndarray, val: np.ndarray) -> np.ndarray:
    """albumentations' ``shift_hsv`` on ``(k, H, W, 3)`` uint8 RGB images, one ``(k,)`` shift each, equal
    to it pixel for pixel (``tests/test_models/test_batch_augments.py``): cv2's uint8 RGB -> HSV, hue
    ``(h + shift) mod 180`` truncated, saturation and value plus the shift truncated to an integer and clipped
    to 0-255, saturation 0 kept 0, back to RGB; an image whose three shifts are 0 is returned as it was. One
    cv2 conversion each way for the whole batch (stacked as one tall image) and one lookup table per image:
    0.47 ms for 7 96x96 images against 0.82 ms through ``shift_hsv`` image by image."""
    k, h, w, _ = pixels.shape
    hsv = cv2.cvtColor(pixels.reshape(k * h, w, 3), cv2.COLOR_RGB2HSV).reshape(k, h, w, 3)
    steps = np.arange(256.0)
    tables = np.empty((k, 256, 1, 3), np.uint8)  # cv2.LUT's per-channel table, per image
    tables[:, :, 0, 0] = np.mod(steps + hue[:, None], 180)
    tables[:, :, 0, 1] = np.clip(steps + np.trunc(sat)[:, None], 0, 255)
    tables[:, 0, 0, 1] = 0
    tables[:, :, 0, 2] = np.clip(steps + np.trunc(val)[:, None], 0, 255)
    for image, table in zip(hsv, tables):
        cv2.LUT(image, table, dst=image)
    out = cv2.cvtColor(hsv.reshape(k * h, w, 3), cv2.COLOR_HSV2RGB).reshape(k, h, w, 3)
    unchanged = (hue == 0) & (sat == 0) & (val == 0)
    if unchanged.any():
        out[unchanged] = pixels[unchanged]
    return out


@MODELS.register_module()
class BatchBlurOrNoise(PerImageAugment):
    """albumentations' ``OneOf([GaussianBlur(blur_limit=(k, k)), GaussNoise(std_range)], p)`` on a batch:
    a chosen image is blurred (separable Gaussian, sigma drawn from ``blur_sigma``, reflect-101 border as
    cv2) or gets per-pixel noise of std ``std_range`` x 255, with even odds."""

    def __init__(self, blur_ksize: int = 3, blur_sigma=(0.5, 3.0), std_range=(0.2, 0.44), p: float = 0.5) -> None:
        super().__init__(p)
        if blur_ksize < 1 or blur_ksize % 2 == 0:
            raise ConfigError(f'BatchBlurOrNoise: blur_ksize={blur_ksize!r} must be an odd positive integer')
        self.ksize = blur_ksize
        self.sigma = _range('BatchBlurOrNoise blur_sigma', blur_sigma)
        self.std = _range('BatchBlurOrNoise std_range', std_range)

    def forward(self, inputs: torch.Tensor, data_samples: List) -> Batch:
        """The blurred and the noisy images are each picked from the batch and written back once."""
        chosen = np.flatnonzero(_draw(len(inputs)) < self.p)
        blur = _draw(len(chosen)) < 0.5
        blurred = torch.from_numpy(chosen[blur]).to(inputs.device)
        noisy = torch.from_numpy(chosen[~blur]).to(inputs.device)
        if len(blurred):
            _on_rows(inputs, blurred, self.blur)
        if len(noisy):
            std = _as(255 * _uniform(len(noisy), self.std), inputs)[:, None, None, None]
            _on_rows(inputs, noisy, lambda x: x.add_(torch.randn_like(x) * std).clamp_(0, 255))
        return inputs, data_samples

    def blur(self, images: torch.Tensor) -> torch.Tensor:
        k, _, h, w = images.shape
        sigma = _uniform(k, self.sigma)
        x = np.arange(self.ksize) - self.ksize // 2
        kernel = np.exp(-0.5 * (x[None] / sigma[:, None])**2)
        kernel = _as(kernel / kernel.sum(1, keepdims=True), images)
        pad = self.ksize // 2
        out = F.pad(images, (pad, pad, pad, pad), mode='reflect')  # cv2's default border, reflect-101
        taps = kernel[:, None, :, None, None]  # (k, 1, ksize, 1, 1): the same taps on every channel
        out = sum(taps[:, :, j] * out[:, :, :, j:j + w] for j in range(self.ksize))  # rows, then columns
        return sum(taps[:, :, j] * out[:, :, j:j + h] for j in range(self.ksize))
