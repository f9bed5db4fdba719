"""Copy-paste on a batch: objects of one training image pasted into another, at the same place.

Copy-paste (Ghiasi et al. 2021; Ultralytics' ``copy_paste``, mmdet's ``CopyPaste``) pastes objects cut out by
their instance masks. Box datasets have no masks, so here an object is cut out by its box, in whole pixels
(the box rounded outward). Objects are pasted where they were in their own image, so every field of a pasted
instance (box, label, keypoints) is exact without resampling. Partner objects whose boxes touch are pasted
together (one cluster) so that no pasted pixel belongs to an object left unlabelled; a cluster that would hide
more than ``max_occlusion`` of an object already in the image is not pasted (Ultralytics' 0.30 overlap rule).
Samples without boxes (a segmentation task's label maps alone) are left as they are.
"""
from typing import List

import numpy as np
import torch
from mmengine.structures import InstanceData

from sscma.registry import MODELS
from sscma.utils.errors import ConfigError

from .batch_augments import Batch, _draw, _probability
from .geometry import DENSE_FIELDS, INSTANCE_SETS
from .mix_augments import MixAugment, _instances_of, _merge_instances


def _xyxy(instances: InstanceData) -> np.ndarray:
    """The instances' boxes as float64 numpy ``(M, 4)`` (a tensor, as the other batch augmentations read them)."""
    return instances.bboxes.detach().cpu().double().numpy().reshape(-1, 4)


def pixel_rects(boxes: np.ndarray, h: int, w: int) -> np.ndarray:
    """xyxy boxes -> the whole-pixel rectangles that hold them, ``[x0, y0, x1, y1)`` clipped to the image."""
    rects = np.concatenate([np.floor(boxes[:, :2]), np.ceil(boxes[:, 2:])], 1).astype(np.int64)
    return np.clip(rects, 0, [w, h, w, h])


def touching_clusters(rects: np.ndarray) -> List[List[int]]:
    """Groups of rectangles connected by overlap (union-find): pasting a group's union pastes whole objects."""
    parent = list(range(len(rects)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(rects)):
        for j in range(i + 1, len(rects)):
            a, b = rects[i], rects[j]
            if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                parent[root(i)] = root(j)
    groups: dict = {}
    for i in range(len(rects)):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


@MODELS.register_module()
class BatchCopyPaste(MixAugment):
    """Each picked image receives objects of a partner image drawn from the batch: each cluster of the
    partner's objects (boxes that touch) with probability ``object_p``, cut by its boxes in whole pixels and
    pasted at the same place, unless it would hide more than ``max_occlusion`` of the area of an object the
    image already has. Dense maps (a segmentation mask) are pasted with the same pixels; the partner's
    ``ignored_instances`` cluster with its objects and are pasted with them.
    """

    def __init__(self, p: float = 0.5, object_p: float = 0.5, max_occlusion: float = 0.3) -> None:
        super().__init__(p)
        self.object_p = _probability('BatchCopyPaste object_p', object_p)
        if not 0 <= max_occlusion <= 1:
            raise ConfigError(f'BatchCopyPaste: max_occlusion={max_occlusion!r} must be in [0, 1]')
        self.max_occlusion = float(max_occlusion)

    def mix(self, inputs: torch.Tensor, data_samples: List, chosen: np.ndarray) -> Batch:
        n = len(inputs)
        partners = np.minimum((_draw(len(chosen)) * n).astype(np.int64), n - 1)
        for i, j in zip(chosen.tolist(), partners.tolist()):
            if i != j:
                count = sum(len(inst) for key in INSTANCE_SETS if (inst := _instances_of(data_samples[j], key)))
                self.paste(inputs, data_samples, i, j, _draw(count))  # one per object: enough for its clusters
        return inputs, data_samples

    def paste(self, inputs: torch.Tensor, data_samples: List, i: int, j: int, draws: np.ndarray) -> None:
        """Paste clusters of sample ``j``'s objects into image ``i`` in place; cluster ``c`` (ordered by its first
        object) is a candidate when ``draws[c] < object_p``."""
        h, w = inputs.shape[-2:]
        sets = {key: inst for key in INSTANCE_SETS if (inst := _instances_of(data_samples[j], key)) is not None}
        target = _instances_of(data_samples[i], 'gt_instances')
        if not sets or target is None or not len(sets.get('gt_instances', ())):
            return
        owners = [(key, k) for key, inst in sets.items() for k in range(len(inst))]
        rects = pixel_rects(np.concatenate([_xyxy(inst) for inst in sets.values()]), h, w)
        mine = pixel_rects(_xyxy(target), h, w)
        areas = np.maximum((mine[:, 2] - mine[:, 0]) * (mine[:, 3] - mine[:, 1]), 1)
        covered = np.zeros((h, w), bool)
        pasted: List[int] = []
        for c, members in enumerate(sorted(touching_clusters(rects), key=min)):
            if c >= len(draws) or draws[c] >= self.object_p:
                continue
            region = covered.copy()
            for x0, y0, x1, y1 in rects[members]:
                region[y0:y1, x0:x1] = True
            hidden = np.array([region[y0:y1, x0:x1].sum() for x0, y0, x1, y1 in mine]) / areas
            if len(hidden) and hidden.max() > self.max_occlusion:
                continue
            covered, pasted = region, pasted + members
        if not pasted:
            return
        chosen_rows = set(pasted)
        mask = torch.from_numpy(covered).to(inputs.device)
        inputs[i] = torch.where(mask, inputs[j], inputs[i])
        for name in DENSE_FIELDS:
            if name in data_samples[i] and name in data_samples[j]:
                ours, theirs = getattr(data_samples[i], name), getattr(data_samples[j], name)
                data_samples[i].set_field(torch.where(mask.to(ours.device), theirs, ours), name)
        for key, inst in sets.items():
            rows = [k for n, (owner, k) in enumerate(owners) if owner == key and n in chosen_rows]
            if rows:
                copied = inst[torch.tensor(rows, dtype=torch.long)].clone()
                own = _instances_of(data_samples[i], key)
                data_samples[i].set_field(_merge_instances([own, copied]) if own is not None else copied, key)
