"""Generated multi-object keypoint sets, written offline in the COCO-keypoints layout (Roboflow export).

Two sets, each with several objects per image, some cut by the border or covered by another object:

- ``figures``: articulated figures with the 17 COCO person keypoints (``nose`` ... ``right_ankle``). Bodies are
  filled with crops of real photographs (scikit-image and scikit-learn sample images), heads are real faces
  (``skimage.data.lfw_subset``), poses are random joint angles. Every figure faces the camera, so its
  ``left_*`` keypoints lie on the image's right: a horizontal flip must swap them by the flip pairs.
- ``gauges``: the analog gauges of :mod:`.meter_builtin` at 40-110 px, 1-4 per image, with the 4 meter
  keypoints ``center``, ``needle_tip``, ``scale_start``, ``scale_end``.

Visibility follows COCO: 2 visible, 1 labelled but covered (by a later object or an occluder drawn over
it), 0 outside the image (coordinates 0, 0). Boxes are the tight boxes of each object's drawn mask inside the
image; ``area`` is the box area (what the YOLO-pose layout of the same images gives). Image sizes vary and
are not square. :func:`write_yolo_pose` writes the same images in the Ultralytics YOLO-pose layout.
"""
import json
import os
import shutil
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from .builtin import _generate_once, default_data_home

PathLike = Union[str, os.PathLike]

COCO_KEYPOINTS = ('nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear', 'left_shoulder', 'right_shoulder',
                  'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist', 'left_hip', 'right_hip', 'left_knee',
                  'right_knee', 'left_ankle', 'right_ankle')
#: COCO's person skeleton, 1-based as in the COCO json
COCO_SKELETON = ((16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7), (6, 8), (7, 9), (8, 10),
                 (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7))
GAUGE_KEYPOINTS = ('center', 'needle_tip', 'scale_start', 'scale_end')
GAUGE_SKELETON = ((1, 2), (1, 3), (1, 4))
POSE_SETS = {  # name: (folder, class name, keypoints, skeleton, splits (name, images, seed))
    'figures': ('pose_figures_v1', 'person', COCO_KEYPOINTS, COCO_SKELETON,
                (('train', 480, 21), ('valid', 100, 22), ('test', 100, 23))),
    'gauges': ('pose_gauges_v1', 'gauge', GAUGE_KEYPOINTS, GAUGE_SKELETON,
               (('train', 400, 31), ('valid', 80, 32), ('test', 80, 33))),
}
IMAGE_SIZES = ((192, 192), (256, 192), (160, 224), (320, 240), (224, 160))  # (width, height)
MIN_INSIDE = 8  # a figure keeps at least this many keypoints inside the image (gauges: their centre)


class _Sources:
    """Backgrounds, textures (colour photos) and faces from packaged sample images."""

    def __init__(self) -> None:
        from skimage import data
        from sklearn.datasets import load_sample_images
        gray = [data.brick(), data.grass(), data.gravel(), data.text()]
        self.backgrounds = [cv2.cvtColor(g, cv2.COLOR_GRAY2RGB) for g in gray] + [
            data.coffee(), data.rocket(), data.hubble_deep_field()] + list(load_sample_images().images)
        self.textures = [data.chelsea(), data.astronaut(), data.immunohistochemistry(), data.retina(),
                         cv2.cvtColor(data.brick(), cv2.COLOR_GRAY2RGB)] + list(load_sample_images().images)
        self.faces = [(f * 255).clip(0, 255).astype(np.uint8) for f in data.lfw_subset()[:100]]


def _crop(img: np.ndarray, rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A random crop of ``img`` (at a random scale) resized to ``w`` x ``h``, float32 RGB."""
    ih, iw = img.shape[:2]
    side = int(rng.integers(min(64, ih, iw), min(ih, iw) + 1))
    cw, ch = (side, max(8, int(side * h / w))) if w >= h else (max(8, int(side * w / h)), side)
    cw, ch = min(cw, iw), min(ch, ih)
    y, x = int(rng.integers(0, ih - ch + 1)), int(rng.integers(0, iw - cw + 1))
    return cv2.resize(img[y:y + ch, x:x + cw], (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)


def _direction(angle: float) -> np.ndarray:
    """Unit vector ``angle`` radians from straight down, towards +x for positive angles."""
    return np.array([np.sin(angle), np.cos(angle)])


def _figure_keypoints(rng: np.random.Generator, height: float) -> Tuple[np.ndarray, float]:
    """The 17 keypoints of a figure ``height`` px tall, its hip centre at the origin, and its head radius."""
    h = height
    k = np.zeros((17, 2))
    lean = np.deg2rad(rng.normal(0, 8))
    up = np.array([np.sin(lean), -np.cos(lean)])
    side = np.array([np.cos(lean), np.sin(lean)])  # towards the figure's left = the image's right
    k[11], k[12] = 0.09 * h * side, -0.09 * h * side  # hips
    neck = 0.30 * h * up
    k[5], k[6] = neck + 0.12 * h * side, neck - 0.12 * h * side  # shoulders
    tilt = lean + np.deg2rad(rng.normal(0, 10))
    head = neck + 0.13 * h * np.array([np.sin(tilt), -np.cos(tilt)])
    r = 0.065 * h
    turn = rng.uniform(-0.3, 0.3) * r
    k[0] = head + [turn, 0.25 * r]
    k[1], k[2] = head + [0.4 * r + turn, -0.2 * r], head + [-0.4 * r + turn, -0.2 * r]
    k[3], k[4] = head + [0.95 * r, 0.0], head + [-0.95 * r, 0.0]
    for sign, (s, e, w) in ((1, (5, 7, 9)), (-1, (6, 8, 10))):  # arms
        a = np.deg2rad(rng.uniform(-20, 160))
        k[e] = k[s] + 0.16 * h * _direction(sign * a)
        k[w] = k[e] + 0.14 * h * _direction(sign * (a + np.deg2rad(rng.uniform(-90, 90))))
    for sign, (hip, knee, ankle) in ((1, (11, 13, 15)), (-1, (12, 14, 16))):  # legs
        a = np.deg2rad(rng.uniform(-10, 40))
        k[knee] = k[hip] + 0.24 * h * _direction(sign * a)
        k[ankle] = k[knee] + 0.23 * h * _direction(sign * (a + np.deg2rad(rng.uniform(-50, 20))))
    return k, r


def _draw_figure(src: _Sources, rng: np.random.Generator, kpts: np.ndarray, head_r: float, w: int,
                 h: int) -> Tuple[np.ndarray, np.ndarray]:
    """The figure's RGB layer (float32) and mask (bool) on a ``w`` x ``h`` canvas."""
    mask = np.zeros((h, w), np.uint8)
    limb = max(2, int(round(head_r * 0.75)))
    p = [tuple(int(round(v * 16)) for v in pt) for pt in kpts]
    torso = np.array([kpts[5], kpts[6], kpts[12], kpts[11]])
    cv2.fillPoly(mask, [np.round(torso * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
    for a, b in ((11, 13), (13, 15), (12, 14), (14, 16), (5, 7), (7, 9), (6, 8), (8, 10), (5, 6), (11, 12)):
        cv2.line(mask, p[a], p[b], 1, limb, cv2.LINE_8, 4)
    body = _crop(src.textures[rng.integers(len(src.textures))], rng, w, h)
    body = body * rng.uniform(0.6, 1.3, 3).astype(np.float32)
    layer = body
    head = np.zeros((h, w), np.uint8)
    centre = (kpts[3] + kpts[4]) / 2
    cv2.ellipse(head, tuple(int(round(v * 16)) for v in centre), (int(head_r * 16), int(head_r * 1.2 * 16)), 0, 0,
                360, 1, -1, cv2.LINE_8, 4)
    face = src.faces[rng.integers(len(src.faces))]
    d = max(4, int(round(head_r * 2.4)))
    face = cv2.resize(face, (d, d), interpolation=cv2.INTER_AREA).astype(np.float32)
    tone = np.array([1.0, 0.82, 0.68]) * rng.uniform(0.5, 1.1)
    x0, y0 = int(round(centre[0])) - d // 2, int(round(centre[1])) - d // 2
    xs, ys = slice(max(x0, 0), min(x0 + d, w)), slice(max(y0, 0), min(y0 + d, h))
    if xs.stop > xs.start and ys.stop > ys.start:
        layer = layer.copy()
        patch = face[ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0, None] * tone
        hm = head[ys, xs, None].astype(bool)
        layer[ys, xs] = np.where(hm, patch, layer[ys, xs])
    mask = (mask | head).astype(bool)
    return layer, mask


def _visibility(kpts: np.ndarray, w: int, h: int, covers: Sequence[np.ndarray]) -> np.ndarray:
    """COCO visibility of each keypoint: 0 outside the image, 1 under one of ``covers``, else 2."""
    vis = np.full(len(kpts), 2, np.int64)
    for i, (x, y) in enumerate(kpts):
        if not (0 <= x < w and 0 <= y < h):
            vis[i] = 0
        elif any(c[int(y), int(x)] for c in covers):
            vis[i] = 1
    return vis


def _place(rng: np.random.Generator, kpts: np.ndarray, w: int, h: int, min_inside: int) -> Optional[np.ndarray]:
    """``kpts`` shifted to a random place where at least ``min_inside`` of them are inside the image."""
    lo, hi = kpts.min(0), kpts.max(0)
    for _ in range(20):
        shift = np.array([rng.uniform(-lo[0] - 0.25 * (hi[0] - lo[0]), w - hi[0] + 0.25 * (hi[0] - lo[0])),
                          rng.uniform(-lo[1] - 0.2 * (hi[1] - lo[1]), h - hi[1] + 0.2 * (hi[1] - lo[1]))])
        moved = kpts + shift
        inside = ((moved >= 0) & (moved < [w, h])).all(1)
        if inside.sum() >= min_inside:
            return moved
    return None


def _gauge(rng: np.random.Generator, size: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A gauge ``size`` px wide: RGB layer (float32), alpha (float32 0..1) and its 4 keypoints."""
    from .meter_builtin import _draw_meter
    big = size * 2
    layer, alpha, kpts, _, _ = _draw_meter(rng, big)
    layer = cv2.resize(layer, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
    alpha = cv2.resize(alpha, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    return layer, alpha, (kpts + 0.5) / 2


def compose(src: _Sources, rng: np.random.Generator, kind: str) -> Tuple[np.ndarray, List[Dict]]:
    """One image (RGB uint8) of the set ``kind`` and its objects: ``keypoints`` (K, 3), ``bbox`` (x, y, w, h)."""
    w, h = IMAGE_SIZES[rng.integers(len(IMAGE_SIZES))]
    img = _crop(src.backgrounds[rng.integers(len(src.backgrounds))], rng, w, h)
    img = img * rng.uniform(0.6, 1.15) + rng.uniform(-25, 25)
    count = int(rng.choice([0, 1, 2, 3, 4], p=[0.05, 0.3, 0.3, 0.2, 0.15]))
    drawn: List[Tuple[np.ndarray, np.ndarray]] = []  # (keypoints, mask) in drawing order
    for _ in range(count):
        if kind == 'figures':
            height = rng.uniform(0.35, 0.95) * h
            local, head_r = _figure_keypoints(rng, height)
            kpts = _place(rng, local, w, h, MIN_INSIDE)
            if kpts is None:
                continue
            layer, mask = _draw_figure(src, rng, kpts, head_r, w, h)
            alpha = mask.astype(np.float32)
        else:
            size = int(rng.integers(40, min(110, min(w, h)) + 1))
            glayer, galpha, local = _gauge(rng, size)
            kpts = _place(rng, local, w, h, 4 if rng.random() < 0.8 else 2)
            if kpts is None or not (0 <= kpts[0, 0] < w and 0 <= kpts[0, 1] < h):
                continue
            dx, dy = np.round(kpts[0] - local[0]).astype(int)
            kpts = local + [dx, dy]
            shift = np.float32([[1, 0, dx], [0, 1, dy]])
            layer = cv2.warpAffine(glayer, shift, (w, h))
            alpha = cv2.warpAffine(galpha, shift, (w, h))
            mask = alpha > 0.5
        if mask.sum() < 20:
            continue
        img = img * (1 - alpha[..., None]) + layer * alpha[..., None]
        drawn.append((kpts, mask))
    occluder = None
    if drawn and rng.random() < 0.3:  # a real object drawn over part of the scene
        ow, oh = int(rng.integers(w // 6, w // 3)), int(rng.integers(h // 6, h // 3))
        x, y = int(rng.integers(0, w - ow)), int(rng.integers(0, h - oh))
        occluder = np.zeros((h, w), bool)
        cv2.ellipse(occluder.view(np.uint8), (x + ow // 2, y + oh // 2), (ow // 2, oh // 2), 0, 0, 360, 1, -1)
        patch = _crop(src.textures[rng.integers(len(src.textures))], rng, w, h)
        img = np.where(occluder[..., None], patch, img)
    img = img + rng.standard_normal(img.shape).astype(np.float32) * rng.uniform(0, 6)
    objects = []
    for i, (kpts, mask) in enumerate(drawn):
        covers = [m for _, m in drawn[i + 1:]] + ([occluder] if occluder is not None else [])
        vis = _visibility(kpts, w, h, covers)
        if (vis > 0).sum() == 0:
            continue
        ys, xs = np.nonzero(mask)
        box = [float(xs.min()), float(ys.min()), float(xs.max() + 1 - xs.min()), float(ys.max() + 1 - ys.min())]
        k = np.concatenate([np.where(vis[:, None] > 0, kpts, 0.0), vis[:, None]], 1)
        objects.append(dict(keypoints=k, bbox=box))
    return np.rint(img).clip(0, 255).astype(np.uint8), objects


def write_pose_split(folder: Path, kind: str, count: int, seed: int, src: Optional[_Sources] = None) -> Dict:
    """Write ``count`` images of the set ``kind`` and ``_annotations.coco.json`` into ``folder``."""
    _, cls, names, skeleton, _ = POSE_SETS[kind]
    src = src or _Sources()
    rng = np.random.default_rng([seed, 2026])
    folder.mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for i in range(count):
        img, objects = compose(src, rng, kind)
        name = f'{folder.name}_{i:04d}.jpg'
        cv2.imwrite(str(folder / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
        images.append(dict(id=i, file_name=name, width=img.shape[1], height=img.shape[0]))
        for obj in objects:
            k = obj['keypoints']
            flat = [round(float(v), 3) if j % 3 < 2 else int(v) for j, v in enumerate(k.reshape(-1))]
            box = [round(v, 3) for v in obj['bbox']]
            anns.append(dict(id=len(anns) + 1, image_id=i, category_id=1, bbox=box, area=round(box[2] * box[3], 3),
                             iscrowd=0, segmentation=[], keypoints=flat, num_keypoints=int((k[:, 2] > 0).sum())))
    coco = dict(info=dict(description=f'sscma generated keypoint set "{kind}"', version='1'), licenses=[],
                categories=[dict(id=1, name=cls, supercategory=cls, keypoints=list(names),
                                 skeleton=[list(s) for s in skeleton])],
                images=images, annotations=anns)
    with open(folder / '_annotations.coco.json', 'w') as f:
        json.dump(coco, f)
    return dict(images=count, objects=len(anns))


def ensure_pose_coco(kind: str = 'figures', root: Optional[PathLike] = None) -> Path:
    """Generate once the keypoint set ``kind`` (``'figures'`` or ``'gauges'``) in the Roboflow COCO layout:
    ``train/``, ``valid/``, ``test/`` each with ``_annotations.coco.json`` beside the JPEGs."""
    if kind not in POSE_SETS:
        raise ValueError(f'builtin pose set {kind!r}: expected one of {sorted(POSE_SETS)}')
    folder, _, _, _, splits = POSE_SETS[kind]
    root = Path(root) if root else default_data_home() / folder

    def write(out: Path) -> None:
        src = _Sources()
        for split, count, seed in splits:
            write_pose_split(out / split, kind, count, seed, src)

    return _generate_once(root, write)


def flip_indices(names: Sequence[str]) -> List[int]:
    """The index each keypoint takes under a horizontal flip: a name with ``left`` in it swaps with the same name
    with ``right`` (``left_eye`` <-> ``right_eye``, ``eye_left`` <-> ``eye_right``); every other keypoint is its own."""
    index = {n: i for i, n in enumerate(names)}
    out = []
    for i, n in enumerate(names):
        other = n.replace('left', '\0').replace('right', 'left').replace('\0', 'right')
        out.append(index.get(other, i))
    return out


def write_yolo_pose(coco_root: PathLike, out: PathLike) -> Path:
    """Write a Roboflow COCO-keypoints export (``train/ valid/ test/``) again in the Ultralytics YOLO-pose layout:
    ``data.yaml`` (``names``, ``kpt_shape``, ``flip_idx``, ``kpt_names``) + ``images/<split>`` + ``labels/<split>``
    with lines ``class cx cy w h x1 y1 v1 ...`` normalised to the image size. Images are hard-linked (copied
    where links are not possible)."""
    import yaml
    coco_root, out = Path(coco_root), Path(out)
    names, kpt_names = None, None
    for split in ('train', 'valid', 'test'):
        ann = coco_root / split / '_annotations.coco.json'
        if not ann.is_file():
            continue
        data = json.loads(ann.read_text())
        cats = sorted(data['categories'], key=lambda c: c['id'])
        names, kpt_names = [c['name'] for c in cats], cats[0]['keypoints']
        cat_index = {c['id']: i for i, c in enumerate(cats)}
        (out / 'images' / split).mkdir(parents=True, exist_ok=True)
        (out / 'labels' / split).mkdir(parents=True, exist_ok=True)
        by_image: Dict = {}
        for a in data['annotations']:
            by_image.setdefault(a['image_id'], []).append(a)
        for img in data['images']:
            w, h = img['width'], img['height']
            link = out / 'images' / split / img['file_name']
            if not link.exists():
                try:  # a hard link where the file system allows it (the readers refuse symlinks out of the root)
                    os.link(coco_root / split / img['file_name'], link)
                except OSError:
                    shutil.copy2(coco_root / split / img['file_name'], link)
            lines = []
            for a in by_image.get(img['id'], []):
                x, y, bw, bh = a['bbox']
                k = np.asarray(a['keypoints'], np.float64).reshape(-1, 3)
                values = [(x + bw / 2) / w, (y + bh / 2) / h, bw / w, bh / h]
                for kx, ky, v in k:
                    values += [kx / w, ky / h, int(v)]
                lines.append(' '.join([str(cat_index[a['category_id']])] +
                                      [f'{v:.6f}' if isinstance(v, float) else str(v) for v in values]))
            (out / 'labels' / split / (Path(img['file_name']).stem + '.txt')).write_text('\n'.join(lines) + '\n')
    if names is None:
        raise FileNotFoundError(f'no {{train,valid,test}}/_annotations.coco.json under {coco_root}')
    meta = dict(train='images/train', val='images/valid', test='images/test',  # relative to this file
                names={i: n for i, n in enumerate(names)}, kpt_shape=[len(kpt_names), 3],
                flip_idx=flip_indices(kpt_names), kpt_names={0: list(kpt_names)})
    (out / 'data.yaml').write_text(yaml.safe_dump(meta, sort_keys=False))
    return out
