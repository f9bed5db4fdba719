"""Training augmentations applied to a whole batch of tensors, boxes included, inside the data preprocessor.

Each one draws its parameters per image from the same distributions as the albumentations transform of the
same name (``Affine``, ``HorizontalFlip``, ``RandomBrightnessContrast``, ``HueSaturationValue``,
``OneOf([GaussianBlur, GaussNoise])``; mmpretrain's ``RandomResizedCrop``) and applies the same formula,
but to all images of the batch in a few torch operations instead of per image in Python (0.7-1.2 ms per
96x96 image through albumentations' box bookkeeping on a 2-core machine; see docs/benchmarks.md). Inputs
are float ``(N, C, H, W)`` pixels in 0-255, RGB for colour, changed in place; boxes are the
``gt_instances.bboxes`` (xyxy tensors, network pixels) of the data samples.
``tests/test_models/test_batch_augments.py`` compares each one with albumentations (or mmpretrain) at fixed
parameters.
"""
import math
from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from sscma.registry import MODELS
from sscma.utils.errors import ConfigError

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


def _uniform(n: int, low_high: Tuple[float, float], like: torch.Tensor) -> torch.Tensor:
    low, high = low_high
    return torch.rand(n, device=like.device, dtype=like.dtype) * (high - low) + low


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
        idx = (torch.rand(len(inputs), device=inputs.device) < self.p).nonzero().flatten()
        if len(idx):
            _on_rows(inputs, idx, lambda picked: self.augment(picked, idx, data_samples))
        return inputs, data_samples

    def augment(self, images: torch.Tensor, idx: torch.Tensor, data_samples: List) -> torch.Tensor:
        raise NotImplementedError


def _instance_sets(sample):
    """``(name, InstanceData)`` of a data sample's non-empty instance sets, whose boxes move with the image."""
    found = []
    for key in ('gt_instances', 'ignored_instances'):
        instances = getattr(sample, key, None)
        if instances is not None and 'bboxes' in instances and instances.bboxes.shape[0]:
            found.append((key, instances))
    return found


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

    def sample_matrices(self, k: int, h: int, w: int, like: torch.Tensor) -> torch.Tensor:
        """``(k, 2, 3)`` forward maps in pixel-edge coordinates, as albumentations builds them."""
        sx, sy = _uniform(k, self.scale, like), _uniform(k, self.scale, like)
        tx = (_uniform(k, self.translate, like) * w).trunc()  # albumentations: int(percent * width)
        ty = (_uniform(k, self.translate, like) * h).trunc()
        angle = _uniform(k, self.rotate, like) * (math.pi / 180)
        if self.shear == (0.0, 0.0):
            return affine_matrices(sx, sy, tx, ty, angle, h, w)
        shear_x = -_uniform(k, self.shear, like) * (math.pi / 180)  # albumentations negates the drawn shear
        shear_y = -_uniform(k, self.shear, like) * (math.pi / 180)
        return affine_matrices(sx, sy, tx, ty, angle, h, w, shear_x, shear_y)

    def augment(self, images: torch.Tensor, idx: torch.Tensor, data_samples: List) -> torch.Tensor:
        h, w = images.shape[-2:]
        matrices = self.sample_matrices(len(idx), h, w, images)
        warped = warp_affine(images, matrices)

        def move(boxes, owner):
            moved = affine_boxes(boxes, matrices[owner])
            return filter_boxes(moved, h, w, self.min_visibility, self.min_size)

        move_boxes(data_samples, idx.tolist(), move)
        return warped


def move_boxes(data_samples: List, chosen: List[int], fn) -> None:
    """Move the boxes of ``data_samples[chosen]`` in one call ``fn(boxes (M, 4), owner (M,)) -> (boxes,
    keep mask or None)``, ``owner`` being each box's position in ``chosen``; dropped boxes leave their
    instance set with their labels."""
    sets, owners = [], []
    for k, i in enumerate(chosen):
        for key, instances in _instance_sets(data_samples[i]):
            sets.append((data_samples[i], key, instances))
            owners.append(k)
    if not sets:
        return
    sizes = [instances.bboxes.shape[0] for _, _, instances in sets]
    owner = torch.repeat_interleave(torch.tensor(owners), torch.tensor(sizes))
    boxes, keep = fn(torch.cat([instances.bboxes for _, _, instances in sets]), owner)
    kept_all = keep is None or bool(keep.all())
    keeps = [None] * len(sets) if kept_all else keep.split(sizes)
    for (sample, key, instances), new, kept in zip(sets, boxes.split(sizes), keeps):
        if kept is None or bool(kept.all()):
            instances.set_field(new, 'bboxes')  # same length: skips InstanceData's per-field length check
        else:
            instances = instances[kept]
            instances.bboxes = new[kept]
            setattr(sample, key, instances)


def affine_matrices(sx, sy, tx, ty, angle, h: int, w: int, shear_x=None, shear_y=None) -> torch.Tensor:
    """Scale, rotate and shear about the image centre, then translate (albumentations' matrix, pixel-edge
    coords): ``x' = Sh R S (x - c) + c + t`` with ``R = [[cos, sin], [-sin, cos]]`` and
    ``Sh = [[1, tan(shear_x)], [tan(shear_y), 1]]`` (angles in radians)."""
    cos, sin = torch.cos(angle), torch.sin(angle)
    a = torch.stack([torch.stack([cos * sx, sin * sy], -1), torch.stack([-sin * sx, cos * sy], -1)], -2)
    if shear_x is not None:
        one = torch.ones_like(shear_x)
        shear = torch.stack([torch.stack([one, torch.tan(shear_x)], -1), torch.stack([torch.tan(shear_y), one], -1)],
                            -2)
        a = shear @ a
    centre = torch.tensor([w / 2, h / 2], dtype=a.dtype, device=a.device)
    shift = centre + torch.stack([tx, ty], -1) - a @ centre
    return torch.cat([a, shift[..., None]], -1)


def warp_affine(images: torch.Tensor, matrices: torch.Tensor, padding_mode: str = 'zeros') -> torch.Tensor:
    """cv2.warpAffine (bilinear, constant 0 border; ``padding_mode='border'``: replicated edge) of each image by
    its forward ``(2, 3)`` edge-coordinate matrix, as one ``grid_sample``."""
    _, _, h, w = images.shape
    a, t = matrices[:, :, :2], matrices[:, :, 2:]
    inv = torch.linalg.inv(a)
    inv_t = -inv @ t
    # normalised coords (align_corners=False): u = D x - 1 with D = diag(2/w, 2/h)
    d = torch.tensor([2 / w, 2 / h], dtype=images.dtype, device=images.device)
    theta_a = d[:, None] * inv / d[None, :]
    theta_t = theta_a.sum(-1, keepdim=True) + d[:, None] * inv_t - 1
    # the sampling grid: each pixel centre's normalised coords through theta (F.affine_grid's result, with
    # elementwise ops instead of its batched matmul: a third of the cost at these sizes)
    ys = ((torch.arange(h, dtype=images.dtype, device=images.device) * 2 + 1) / h - 1)[:, None]
    xs = (torch.arange(w, dtype=images.dtype, device=images.device) * 2 + 1) / w - 1
    th = torch.cat([theta_a, theta_t], -1)[:, :, :, None, None]  # (k, 2, 3, 1, 1)
    grid = torch.stack([th[:, 0, 0] * xs + th[:, 0, 1] * ys + th[:, 0, 2],
                        th[:, 1, 0] * xs + th[:, 1, 1] * ys + th[:, 1, 2]], -1)
    return F.grid_sample(images, grid, mode='bilinear', padding_mode=padding_mode, align_corners=False)


def affine_boxes(boxes: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    """The axis-aligned boxes around the four corners of each xyxy box moved by ``matrices`` (one ``(2, 3)``
    for all, or ``(N, 2, 3)``, one per box)."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    corners = torch.stack([torch.stack([x1, y1], -1), torch.stack([x2, y1], -1),
                           torch.stack([x2, y2], -1), torch.stack([x1, y2], -1)], 1)  # (N, 4, 2)
    matrices = matrices.to(boxes.dtype)
    if matrices.dim() == 2:
        moved = corners @ matrices[:, :2].T + matrices[:, 2]
    else:
        moved = corners @ matrices[:, :, :2].transpose(1, 2) + matrices[:, None, :, 2]
    return torch.cat([moved.amin(1), moved.amax(1)], -1)


def filter_boxes(boxes: torch.Tensor, h: int, w: int, min_visibility: float,
                 min_size: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """Boxes clipped to the image and the mask of those albumentations' ``filter_bboxes`` keeps."""
    eps = 1e-7
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    clipped = torch.stack([boxes[:, 0].clamp(0, w), boxes[:, 1].clamp(0, h),
                           boxes[:, 2].clamp(0, w), boxes[:, 3].clamp(0, h)], -1)
    cw, ch = clipped[:, 2] - clipped[:, 0], clipped[:, 3] - clipped[:, 1]
    keep = ((area >= eps) & (cw * ch / (area + eps) >= min_visibility)
            & (cw >= min_size - eps) & (ch >= min_size - eps))
    return clipped, keep


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

    def sample_crops(self, k: int, h: int, w: int, like: torch.Tensor) -> torch.Tensor:
        """``(k, 4)`` crops ``(x0, y0, width, height)`` in whole pixels, drawn as mmpretrain draws them."""
        n = max(self.max_attempts, 1)
        area = torch.rand(k, n, device=like.device, dtype=like.dtype)
        area = (area * (self.crop_ratio[1] - self.crop_ratio[0]) + self.crop_ratio[0]) * (h * w)
        log_low, log_high = math.log(self.aspect_ratio[0]), math.log(self.aspect_ratio[1])
        ratio = torch.exp(torch.rand(k, n, device=like.device, dtype=like.dtype) * (log_high - log_low) + log_low)
        cw, ch = torch.sqrt(area * ratio).round(), torch.sqrt(area / ratio).round()
        fits = (cw > 0) & (cw <= w) & (ch > 0) & (ch <= h)
        if self.max_attempts == 0:
            fits[:] = False
        first = fits.to(torch.uint8).argmax(1, keepdim=True)
        cw, ch, found = cw.gather(1, first)[:, 0], ch.gather(1, first)[:, 0], fits.any(1)
        # mmpretrain's fallback: the central crop nearest in aspect ratio
        in_ratio = w / h
        if in_ratio < self.aspect_ratio[0]:
            fallback = (float(w), float(round(w / self.aspect_ratio[0])))
        elif in_ratio > self.aspect_ratio[1]:
            fallback = (float(round(h * self.aspect_ratio[1])), float(h))
        else:
            fallback = (float(w), float(h))
        cw = torch.where(found, cw, torch.full_like(cw, fallback[0]))
        ch = torch.where(found, ch, torch.full_like(ch, fallback[1]))
        x0 = torch.where(found, (torch.rand_like(cw) * (w - cw + 1)).floor(), ((w - cw) / 2).floor())
        y0 = torch.where(found, (torch.rand_like(ch) * (h - ch + 1)).floor(), ((h - ch) / 2).floor())
        return torch.stack([x0, y0, cw, ch], -1)

    def augment(self, images: torch.Tensor, idx: torch.Tensor, data_samples: List) -> torch.Tensor:
        h, w = images.shape[-2:]
        return resize_crops(images, self.sample_crops(len(idx), h, w, images))


def resize_crops(images: torch.Tensor, crops: torch.Tensor) -> torch.Tensor:
    """Each image's crop ``(x0, y0, width, height)`` resized to the image's size, bilinear (cv2.resize)."""
    h, w = images.shape[-2:]
    x0, y0, cw, ch = crops.to(images.dtype).unbind(-1)
    zero = torch.zeros_like(x0)
    sx, sy = w / cw, h / ch  # x' = (x - x0) * w / cw
    matrices = torch.stack([torch.stack([sx, zero, -x0 * sx], -1), torch.stack([zero, sy, -y0 * sy], -1)], -2)
    return warp_affine(images, matrices, padding_mode='border')


@MODELS.register_module()
class BatchHorizontalFlip(PerImageAugment):
    """albumentations' ``HorizontalFlip`` on a batch: images mirrored, boxes ``x -> width - x``."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__(p)

    def augment(self, images: torch.Tensor, idx: torch.Tensor, data_samples: List) -> torch.Tensor:
        w = images.shape[-1]

        def mirror(b, owner):
            return torch.stack([w - b[:, 2], b[:, 1], w - b[:, 0], b[:, 3]], -1), None

        move_boxes(data_samples, idx.tolist(), mirror)
        return images.flip(-1)


@MODELS.register_module()
class BatchBrightnessContrast(PerImageAugment):
    """albumentations' ``RandomBrightnessContrast`` (``brightness_by_max=True``) on a batch:
    ``x * (1 + c) + 255 * b``, clipped to 0-255, with ``c`` and ``b`` drawn per image."""

    def __init__(self, brightness_limit=0.2, contrast_limit=0.2, p: float = 0.5) -> None:
        super().__init__(p)
        self.brightness = _range('BatchBrightnessContrast brightness_limit', brightness_limit, symmetric=True)
        self.contrast = _range('BatchBrightnessContrast contrast_limit', contrast_limit, symmetric=True)

    def augment(self, images: torch.Tensor, idx: torch.Tensor, data_samples: List) -> torch.Tensor:
        alpha = 1 + _uniform(len(idx), self.contrast, images)
        beta = 255 * _uniform(len(idx), self.brightness, images)
        return images.mul_(alpha[:, None, None, None]).add_(beta[:, None, None, None]).clamp_(0, 255)


def rgb_to_hsv(rgb: torch.Tensor) -> torch.Tensor:
    """``(N, 3, H, W)`` RGB 0-255 -> hue in sixths of the circle [0, 6), saturation and value in 0-255."""
    r, g, b = rgb.unbind(1)
    value = torch.maximum(torch.maximum(r, g), b)
    delta = value - torch.minimum(torch.minimum(r, g), b)
    safe = delta.clamp(min=1e-6)
    hue = torch.where(value == r, (g - b) / safe, torch.where(value == g, (b - r) / safe + 2, (r - g) / safe + 4))
    hue = torch.where(hue < 0, hue + 6, hue) * (delta > 0)
    sat = 255 * delta / value.clamp(min=1e-6)
    return torch.stack([hue, sat, value], 1)


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_hsv`."""
    hue, sat, value = hsv[:, :1], hsv[:, 1:2], hsv[:, 2:]
    k = hue + torch.tensor([5.0, 3.0, 1.0], dtype=hsv.dtype, device=hsv.device)[:, None, None]  # R, G, B
    k = torch.where(k >= 6, k - 6, k)
    return value - (value * sat / 255) * torch.clamp(torch.minimum(k, 4 - k), 0, 1)


@MODELS.register_module()
class BatchHueSaturationValue(PerImageAugment):
    """albumentations' ``HueSaturationValue`` on a batch, in its uint8 units: hue shifted by ``h`` of cv2's
    180 steps (2 degrees each), saturation and value by ``s`` / ``v`` of 255; grey pixels stay grey. On one
    channel only the value shift applies."""

    def __init__(self, hue_shift_limit=20, sat_shift_limit=30, val_shift_limit=20, p: float = 0.5) -> None:
        super().__init__(p)
        self.hue = _range('BatchHueSaturationValue hue_shift_limit', hue_shift_limit, symmetric=True)
        self.sat = _range('BatchHueSaturationValue sat_shift_limit', sat_shift_limit, symmetric=True)
        self.val = _range('BatchHueSaturationValue val_shift_limit', val_shift_limit, symmetric=True)

    def augment(self, images: torch.Tensor, idx: torch.Tensor, data_samples: List) -> torch.Tensor:
        k = len(idx)
        hue_shift = _uniform(k, self.hue, images)[:, None, None]
        sat_shift = _uniform(k, self.sat, images)[:, None, None]
        val_shift = _uniform(k, self.val, images)[:, None, None, None]
        if images.shape[1] != 3:
            return images.add_(val_shift).clamp_(0, 255)
        hsv = rgb_to_hsv(images)
        hue, sat, value = hsv.unbind(1)
        hue = hue + hue_shift / 30  # cv2 units (2 degrees) -> sixths of the circle
        hue = torch.where(hue < 0, hue + 6, torch.where(hue >= 6, hue - 6, hue))
        sat = torch.where(sat > 0, (sat + sat_shift).clamp(0, 255), sat)
        value = (value + val_shift[:, 0]).clamp(0, 255)
        return hsv_to_rgb(torch.stack([hue, sat, value], 1))


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

    def augment(self, images: torch.Tensor, idx: torch.Tensor, data_samples: List) -> torch.Tensor:
        blur = torch.rand(len(idx), device=images.device) < 0.5
        blurred, noisy = blur.nonzero().flatten(), (~blur).nonzero().flatten()
        if len(blurred):
            _on_rows(images, blurred, self.blur)
        if len(noisy):
            std = 255 * _uniform(len(noisy), self.std, images)[:, None, None, None]
            _on_rows(images, noisy, lambda x: x.add_(torch.randn_like(x) * std).clamp_(0, 255))
        return images

    def blur(self, images: torch.Tensor) -> torch.Tensor:
        k, c, h, w = images.shape
        sigma = _uniform(k, self.sigma, images)
        x = torch.arange(self.ksize, dtype=images.dtype, device=images.device) - self.ksize // 2
        kernel = torch.exp(-0.5 * (x[None] / sigma[:, None])**2)
        kernel = (kernel / kernel.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (k * c, ksize)
        pad = self.ksize // 2
        out = F.pad(images, (pad, pad, pad, pad), mode='reflect')  # cv2's default border, reflect-101
        taps = kernel.reshape(k, c, self.ksize)[..., None, None]
        out = sum(taps[:, :, j] * out[:, :, :, j:j + w] for j in range(self.ksize))  # rows, then columns
        return sum(taps[:, :, j] * out[:, :, j:j + h] for j in range(self.ksize))
