"""How the ground truth moves with an image that a batch augmentation warped: one mover per geometric field.

A batch augmentation (:mod:`.batch_augments`) gives each picked image a ``(2, 3)`` map from old to new pixel
coordinates (an affine warp, a mirror, a crop resized back); :func:`move_geometry` then moves every field of
:data:`GEOMETRIC_FIELDS` that a sample's ``gt_instances`` / ``ignored_instances`` hold, and leaves the other
fields (labels, image-level targets) as they are. A task with a geometric field of its own (masks, oriented
boxes ...) registers its mover with :func:`geometric_field`; each task lists its fields
(``sscma.tasks.Task.geometric_fields``), and a test checks that every listed field has a mover. Dense maps of a
whole sample (a segmentation mask, ``gt_sem_seg``) are warped like the image, by nearest neighbour
(:data:`DENSE_FIELDS`).

A mover is ``fn(values, matrices, h, w, sample_metas, box_filter) -> (new values, keep mask or None)`` on
float64 numpy arrays of all instances of the batch at once: ``values`` ``(M, ...)``, ``matrices`` ``(M, 2,
3)`` (each instance's image map), ``sample_metas`` each instance's sample metainfo. A ``keep`` mask drops
instances (with all their fields); ``box_filter`` is the augmentation's ``(min_visibility, min_size)`` or
``None``.
"""
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

Mover = Callable[..., Tuple[np.ndarray, Optional[np.ndarray]]]
GEOMETRIC_FIELDS: Dict[str, Mover] = {}
INSTANCE_SETS = ('gt_instances', 'ignored_instances')
#: Dense maps of a whole sample (a segmentation mask), warped like the image: ``fn(maps, matrices) -> maps``
#: on a ``(k, H, W)`` tensor of the chosen samples.
DENSE_FIELDS: Dict[str, Callable[[torch.Tensor, np.ndarray], torch.Tensor]] = {}
IGNORE_INDEX = 255


def dense_field(name: str) -> Callable:
    """Register ``fn`` as the mover of the sample-level map ``name``."""
    def register(fn: Callable) -> Callable:
        DENSE_FIELDS[name] = fn
        return fn
    return register


@dense_field('gt_sem_seg')
def move_label_map(maps: torch.Tensor, matrices: np.ndarray) -> torch.Tensor:
    """Class-index maps warped by nearest neighbour only (never a blend of two classes); pixels from outside the
    image are ignored (255)."""
    shifted = (maps.float() + 1)[:, None]  # 0 is what grid_sample reads outside the image
    out = warp_affine(shifted, matrices, mode='nearest')[:, 0].round().long()
    return torch.where(out == 0, torch.full_like(out, IGNORE_INDEX), out - 1).to(maps.dtype)


def geometric_field(name: str) -> Callable[[Mover], Mover]:
    """Register ``fn`` as the mover of the instance field ``name``."""
    def register(fn: Mover) -> Mover:
        GEOMETRIC_FIELDS[name] = fn
        return fn
    return register


def affine_points(points: np.ndarray, matrices: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """``x', y'`` of points ``(M, P)`` each moved by its row's ``(M, 2, 3)`` map."""
    m = matrices[:, :, None, :]  # (M, 2, 1, 3)
    # products written out, not `@`: numpy's matmul goes to the BLAS, whose threads fight torch's for 2 cores
    x = m[:, 0, :, 0] * points[..., 0] + m[:, 0, :, 1] * points[..., 1] + m[:, 0, :, 2]
    y = m[:, 1, :, 0] * points[..., 0] + m[:, 1, :, 1] * points[..., 1] + m[:, 1, :, 2]
    return x, y


def affine_boxes(boxes: np.ndarray, matrices: np.ndarray) -> np.ndarray:
    """The axis-aligned boxes around the four corners of each xyxy box moved by ``matrices`` (one ``(2, 3)``
    for all, or ``(N, 2, 3)``, one per box)."""
    m = np.broadcast_to(matrices, (len(boxes), 2, 3))
    corners = np.stack([boxes[:, [0, 2, 2, 0]], boxes[:, [1, 1, 3, 3]]], -1)  # (N, 4, 2)
    x, y = affine_points(corners, m)
    return np.stack([x.min(1), y.min(1), x.max(1), y.max(1)], -1)


def filter_boxes(boxes: np.ndarray, h: int, w: int, min_visibility: float,
                 min_size: float) -> Tuple[np.ndarray, np.ndarray]:
    """Boxes clipped to the image and the mask of those albumentations' ``filter_bboxes`` keeps."""
    eps = 1e-7
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    clipped = np.clip(boxes, 0, [w, h, w, h])
    cw, ch = clipped[:, 2] - clipped[:, 0], clipped[:, 3] - clipped[:, 1]
    keep = ((area >= eps) & (cw * ch / (area + eps) >= min_visibility)
            & (cw >= min_size - eps) & (ch >= min_size - eps))
    return clipped, keep


@geometric_field('bboxes')
def move_bboxes(boxes, matrices, h, w, sample_metas, box_filter):
    """xyxy boxes: the box around the moved corners (albumentations' ``largest_box``), clipped and filtered by
    ``box_filter`` when the augmentation gives one."""
    moved = affine_boxes(boxes.reshape(-1, 4), matrices)
    return filter_boxes(moved, h, w, *box_filter) if box_filter else (moved, None)


@geometric_field('keypoints')
def move_keypoints(keypoints, matrices, h, w, sample_metas, box_filter):
    """``(M, K, 2)`` keypoints moved point by point; a map that mirrors the image (negative determinant) also
    swaps left and right keypoints by the sample's ``flip_indices`` (mmpose's convention), when it has them."""
    x, y = affine_points(keypoints.reshape(len(keypoints), -1, 2), matrices)
    return swap_mirrored(np.stack([x, y], -1).reshape(keypoints.shape), matrices, sample_metas), None


@geometric_field('keypoints_visible')
def move_keypoint_visibility(visible, matrices, h, w, sample_metas, box_filter):
    """``(M, K)`` visibilities follow their keypoints: swapped by ``flip_indices`` on a mirror, like them."""
    return swap_mirrored(visible.copy(), matrices, sample_metas), None


def swap_mirrored(values: np.ndarray, matrices: np.ndarray, sample_metas: Sequence[dict]) -> np.ndarray:
    """``values`` (``(M, K, ...)``, changed in place) with the K entries of each instance whose map mirrors the
    image (negative determinant) reordered by its sample's ``flip_indices``, when it has them."""
    mirrored = matrices[:, 0, 0] * matrices[:, 1, 1] - matrices[:, 0, 1] * matrices[:, 1, 0] < 0
    for i in np.flatnonzero(mirrored):
        flip = sample_metas[i].get('flip_indices')
        if flip is not None:
            values[i] = values[i][list(flip)]
    return values


def _sets(sample) -> List[Tuple[str, object]]:
    found = []
    for key in INSTANCE_SETS:
        instances = getattr(sample, key, None)
        if instances is not None and len(instances) and any(f in instances for f in GEOMETRIC_FIELDS):
            found.append((key, instances))
    return found


def move_geometry(data_samples: List, chosen: Sequence[int], matrices: np.ndarray, h: int, w: int,
                  box_filter: Optional[Tuple[float, float]] = None) -> None:
    """Move the geometric fields of ``data_samples[chosen]`` by ``matrices`` (``(len(chosen), 2, 3)``, the k-th
    for ``chosen[k]``), in place; instances a mover drops leave with all their fields."""
    for name, mover in DENSE_FIELDS.items():
        rows = [k for k, i in enumerate(chosen) if data_samples[i] is not None and name in data_samples[i]]
        if rows:
            maps = torch.stack([getattr(data_samples[chosen[k]], name) for k in rows])
            if tuple(maps.shape[-2:]) != (h, w):
                raise ValueError(f'{name} is {tuple(maps.shape[-2:])} but the images are {(h, w)}: a dense map must '
                                 'be resized with its image before the batch augmentations')
            for k, moved in zip(rows, mover(maps, np.asarray(matrices)[rows])):
                data_samples[chosen[k]].set_field(moved, name)
    sets, owners = [], []
    for k, i in enumerate(chosen):
        for key, instances in _sets(data_samples[i]):
            sets.append((data_samples[i], key, instances))
            owners.append(k)
    if not sets:
        return
    sizes = [len(instances) for _, _, instances in sets]
    per_item = np.repeat(np.asarray(matrices, np.float64)[owners], sizes, axis=0)
    metas = [sample.metainfo for (sample, _, _), n in zip(sets, sizes) for _ in range(n)]
    starts = np.concatenate([[0], np.cumsum(sizes)])
    keep = np.ones(int(starts[-1]), bool)
    moved: Dict[str, Dict[int, object]] = {}
    for name, mover in GEOMETRIC_FIELDS.items():
        holders = [n for n, (_, _, instances) in enumerate(sets) if name in instances]  # the sets that have it
        if not holders:
            continue
        rows = np.concatenate([np.arange(starts[n], starts[n + 1]) for n in holders])
        old = [sets[n][2].get(name) for n in holders]
        values = np.concatenate([v.detach().cpu().double().numpy() if isinstance(v, torch.Tensor)
                                 else np.asarray(v, np.float64) for v in old])
        new, kept = mover(values, per_item[rows], h, w, [metas[r] for r in rows], box_filter)
        if kept is not None:
            keep[rows] &= kept
        parts = np.split(new, np.cumsum([sizes[n] for n in holders])[:-1])
        moved[name] = {n: torch.from_numpy(p).to(device=v.device, dtype=v.dtype) if isinstance(v, torch.Tensor)
                       else p.astype(np.asarray(v).dtype) for n, p, v in zip(holders, parts, old)}
    for n, (sample, key, instances) in enumerate(sets):
        kept = keep[starts[n]:starts[n + 1]]
        for name, values in moved.items():
            if n in values:
                instances.set_field(values[n], name)  # same length: skips InstanceData's per-field length check
        if not kept.all():
            device = next((v.device for v in instances.values() if isinstance(v, torch.Tensor)), 'cpu')
            setattr(sample, key, instances[torch.from_numpy(kept).to(device)])


def warp_affine(images: torch.Tensor, matrices, padding_mode: str = 'zeros', mode: str = 'bilinear') -> torch.Tensor:
    """cv2.warpAffine (bilinear, or ``mode='nearest'``; constant 0 border; ``padding_mode='border'``: replicated
    edge) of each image by its forward ``(2, 3)`` edge-coordinate matrix (a ``(k, 2, 3)`` array), as one
    ``grid_sample``."""
    _, _, h, w = images.shape
    m = np.asarray(matrices, np.float64)
    a, b, c, e = m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1]
    inv = np.stack([np.stack([e, -b], -1), np.stack([-c, a], -1)], 1) / (a * e - b * c)[:, None, None]
    inv_t = -(inv * m[:, None, :, 2]).sum(-1, keepdims=True)
    # normalised coords (align_corners=False): u = D x - 1 with D = diag(2/w, 2/h)
    d = np.array([2 / w, 2 / h])
    theta_a = d[:, None] * inv / d[None, :]
    theta_t = theta_a.sum(-1, keepdims=True) + d[:, None] * inv_t - 1
    # the sampling grid: each pixel centre's normalised coords through theta (F.affine_grid's result). Built
    # separably, a column part (k, 2, 1, W) plus a row part (k, 2, H, 1) in one broadcast add, and passed to
    # grid_sample as a strided (k, H, W, 2) view: 0.06 ms for 11 96x96 images, affine_grid's matmul 0.7 ms
    ys = ((torch.arange(h, dtype=images.dtype, device=images.device) * 2 + 1) / h - 1)[:, None]
    xs = (torch.arange(w, dtype=images.dtype, device=images.device) * 2 + 1) / w - 1
    th = torch.from_numpy(np.concatenate([theta_a, theta_t], -1)).to(device=images.device, dtype=images.dtype)
    th = th[:, :, :, None, None]  # (k, 2, 3, 1, 1)
    grid = (th[:, :, 0] * xs + (th[:, :, 1] * ys + th[:, :, 2])).permute(0, 2, 3, 1)
    return F.grid_sample(images, grid, mode=mode, padding_mode=padding_mode, align_corners=False)
