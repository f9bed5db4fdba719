"""Augmentations that put several training images into one, on a whole batch: mosaic and mixup.

Small datasets gain most from them (Ultralytics trains every detector with mosaic and switches it off for the
last epochs; mmdet's RTMDet recipe uses ``CachedMosaic`` + ``CachedMixUp`` with ``PipelineSwitchHook``). Here
the partner images come from the same batch, so nothing is cached or re-read, and the ground truth is moved
exactly: a mosaic is a whole-pixel crop of four images placed side by side (no resampling: every box moves by
an integer offset), mixup a blend that keeps both images' objects. ``BatchAugmentSwitchHook``
(:mod:`sscma.engine.hooks`) turns them off for a run's last epochs.
"""
from typing import List

import numpy as np
import torch
from mmengine.structures import InstanceData
from torch import nn

from sscma.registry import MODELS
from sscma.utils.errors import ConfigError

from .batch_augments import Batch, _draw, _probability
from .geometry import DENSE_FIELDS, INSTANCE_SETS, move_geometry


def _instances_of(sample, key: str):
    instances = getattr(sample, key, None) if sample is not None else None
    return instances if isinstance(instances, InstanceData) else None


def _merge_instances(parts: List) -> InstanceData:
    """One ``InstanceData`` of several (``InstanceData.cat``); the empty ones are left out unless all are."""
    nonempty = [p for p in parts if len(p)]
    return InstanceData.cat(nonempty) if nonempty else parts[0]


def _holder(sample, moved_sets: dict):
    """A bare data sample with copies of ``sample``'s instance sets (moved without touching ``sample``) and the
    one metainfo field a mover reads (``flip_indices``); the rest of the metainfo is not copied (RTMDet's
    carries every raw annotation)."""
    flip = sample.metainfo.get('flip_indices')
    holder = type(sample)(metainfo=dict(flip_indices=flip) if flip is not None else None)
    for key, instances in moved_sets.items():
        holder.set_field(instances.clone(), key)
    return holder


class MixAugment(nn.Module):
    """Base: ``p`` is the chance that each image of the batch is replaced by a mix; ``p`` may be changed during
    training (``BatchAugmentSwitchHook`` sets it to 0 for the last epochs)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = _probability(type(self).__name__, p)

    def forward(self, inputs: torch.Tensor, data_samples: List) -> Batch:
        if not self.p:  # off: no draw either, so a config with it at 0 trains exactly as one without it
            return inputs, data_samples
        chosen = np.flatnonzero(_draw(len(inputs)) < self.p)
        if len(chosen):
            inputs, data_samples = self.mix(inputs, data_samples, chosen)
        return inputs, data_samples

    def mix(self, inputs: torch.Tensor, data_samples: List, chosen: np.ndarray) -> Batch:
        raise NotImplementedError


@MODELS.register_module()
class BatchMosaic(MixAugment):
    """Mosaic (YOLOv4, Ultralytics, mmdet's ``Mosaic``) on a batch: each picked image is replaced by an
    ``H x W`` window of a ``2H x 2W`` canvas holding it (top left) and three images drawn from the batch (top
    right, bottom left, bottom right), all at full size; the window's top-left corner is drawn in whole pixels,
    uniformly in ``[0, W] x [0, H]`` (Ultralytics' mosaic centre in the middle half of the canvas). Objects keep
    their size, so small objects stay visible (a 2x2 grid of half-size images would halve them).

    Boxes move by the window's offset; a box that keeps less than ``min_visibility`` of its area in the window,
    or ends narrower or lower than ``min_size`` pixels, is dropped with its label (as in ``BatchAffine``).
    Every geometric field (keypoints ...) and dense map (a segmentation mask) moves the same way. Put scale
    jitter after it (``BatchAffine``), as Ultralytics does after its mosaic.
    """

    def __init__(self, p: float = 1.0, min_visibility: float = 0.3, min_size: float = 1.0) -> None:
        super().__init__(p)
        self.box_filter = (float(min_visibility), float(min_size))

    def mix(self, inputs: torch.Tensor, data_samples: List, chosen: np.ndarray) -> Batch:
        n, k = len(inputs), len(chosen)
        h, w = inputs.shape[-2:]
        partners = np.minimum((_draw((k, 3)) * n).astype(np.int64), n - 1)
        corner = np.floor(_draw((k, 2)) * np.array([w + 1, h + 1])).astype(np.int64)
        return self.place(inputs, data_samples, chosen, partners, corner)

    def place(self, inputs: torch.Tensor, data_samples: List, chosen: np.ndarray, partners: np.ndarray,
              corner: np.ndarray) -> Batch:
        """The mosaic of each ``chosen`` image with its three ``partners`` (``(k, 3)`` batch indices: top right,
        bottom left, bottom right), cut at the window corners ``corner`` (``(k, 2)`` whole pixels ``(x0, y0)``,
        within ``[0, W] x [0, H]``)."""
        k = len(chosen)
        h, w = inputs.shape[-2:]
        sources = np.concatenate([np.asarray(chosen)[:, None], partners], 1)  # (k, 4)
        quadrant = np.array([[0, 0], [w, 0], [0, h], [w, h]])
        shifts = quadrant[None] - corner[:, None]  # (k, 4, 2): where each source's origin lands in the window

        def windows(stack: torch.Tensor) -> torch.Tensor:
            """The window of each chosen image's canvas, from ``stack`` ``(n, ..., H, W)`` (images or maps)."""
            parts = stack.index_select(0, torch.from_numpy(sources.reshape(-1)).to(stack.device))
            parts = parts.reshape(k, 4, *stack.shape[1:])
            canvas = torch.cat([torch.cat([parts[:, 0], parts[:, 1]], -1), torch.cat([parts[:, 2], parts[:, 3]], -1)],
                               -2)
            return torch.stack([canvas[r, ..., y:y + h, x:x + w] for r, (x, y) in enumerate(corner.tolist())])

        out = windows(inputs)
        for name in DENSE_FIELDS:
            if data_samples[0] is not None and name in data_samples[0]:
                maps = windows(torch.stack([getattr(s, name) for s in data_samples]))
                for r, i in enumerate(chosen.tolist()):
                    data_samples[i].set_field(maps[r], name)
        holders, matrices = [], []
        for r in range(k):
            for q in range(4):
                source = data_samples[sources[r, q]]
                sets = {key: inst for key in INSTANCE_SETS if (inst := _instances_of(source, key)) is not None}
                holders.append(_holder(source, sets) if sets else None)
                matrices.append([[1.0, 0.0, shifts[r, q, 0]], [0.0, 1.0, shifts[r, q, 1]]])
        if any(holder is not None for holder in holders):
            present = [j for j, holder in enumerate(holders) if holder is not None]
            move_geometry([holders[j] for j in present], list(range(len(present))),
                          np.asarray(matrices, np.float64)[present], h, w, self.box_filter)
            for r, i in enumerate(chosen.tolist()):
                group = [holders[r * 4 + q] for q in range(4)]
                for key in INSTANCE_SETS:
                    parts = [_instances_of(g, key) for g in group]
                    parts = [p for p in parts if p is not None]
                    if parts:
                        data_samples[i].set_field(_merge_instances(parts), key)
        inputs = inputs.index_copy_(0, torch.from_numpy(chosen).to(inputs.device), out)
        return inputs, data_samples


@MODELS.register_module()
class BatchMixUp(MixAugment):
    """MixUp for detection (Zhang et al. 2017; Ultralytics' ``mixup``, mmdet's ``MixUp``) on a batch: each
    picked image becomes ``r * image + (1 - r) * partner``, the partner drawn from the batch and ``r`` from
    ``Beta(alpha, alpha)`` (Ultralytics: 32, so about 0.5), and keeps both images' objects. A task whose
    samples carry dense maps (segmentation masks) cannot blend labels: it is refused by name.
    """

    def __init__(self, p: float = 0.5, alpha: float = 32.0) -> None:
        super().__init__(p)
        if not alpha > 0:
            raise ConfigError(f'BatchMixUp: alpha={alpha!r} must be > 0')
        self.alpha = float(alpha)

    def mix(self, inputs: torch.Tensor, data_samples: List, chosen: np.ndarray) -> Batch:
        n, k = len(inputs), len(chosen)
        if data_samples[0] is not None and any(name in data_samples[0] for name in DENSE_FIELDS):
            raise ConfigError('BatchMixUp: these samples carry a label map (segmentation); mixup cannot blend class '
                              'labels pixel by pixel: leave BatchMixUp out of the augments')
        partners = np.minimum((_draw(k) * n).astype(np.int64), n - 1)
        ratio = torch.distributions.Beta(self.alpha, self.alpha).sample((k, )).to(inputs)
        return self.blend(inputs, data_samples, chosen, partners, ratio)

    def blend(self, inputs: torch.Tensor, data_samples: List, chosen: np.ndarray, partners: np.ndarray,
              ratio: torch.Tensor) -> Batch:
        """Each ``chosen`` image blended with its partner (batch indices) at ``ratio`` (``(k,)``, its own share)."""
        idx = torch.from_numpy(chosen).to(inputs.device)
        mine, theirs = inputs.index_select(0, idx), inputs.index_select(0, torch.from_numpy(partners).to(idx))
        mixed = mine * ratio[:, None, None, None] + theirs * (1 - ratio[:, None, None, None])
        merged = {}
        for i, j in zip(chosen.tolist(), partners.tolist()):
            for key in INSTANCE_SETS:
                own, other = _instances_of(data_samples[i], key), _instances_of(data_samples[j], key)
                if own is not None and other is not None:
                    merged[i, key] = _merge_instances([own, other.clone()])
        for (i, key), instances in merged.items():  # after all merges: a partner's objects are its own
            data_samples[i].set_field(instances, key)
        return inputs.index_copy_(0, idx, mixed), data_samples
