"""Detection scenes described in relative coordinates, written as image files at any size.

A scene is a list of objects ``(label, cx, cy, r)`` with centre and radius as fractions of the image width /
height, so the same scene can be written at 128x128, 160x120 or 64x48 and must score the same metric. Class
0 is a red disc, class 1 a green square, on a dark noisy background; boxes are clipped to the image (as an
annotation tool does for objects cut by the border). :class:`ColourOracle` is a fixed "model" that finds the
shapes by colour in whatever the data pipeline feeds the network, so metrics can be checked without
training.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np
import torch

Scene = List[Tuple[int, float, float, float]]
COLOURS_BGR = ((0, 0, 255), (0, 255, 0))  # class 0 red disc, class 1 green square
CLASSES = ('disc', 'block')


def make_scenes(n: int, seed: int = 0, border_every: int = 4, empty_every: int = 5) -> List[Scene]:
    """``n`` scenes of 1-3 objects; every ``empty_every``-th is empty, every ``border_every``-th has an object
    whose box is cut by the right or bottom border."""
    rng = np.random.default_rng(seed)
    scenes = []
    for i in range(n):
        if empty_every and i % empty_every == empty_every - 1:
            scenes.append([])
            continue
        objs: Scene = []
        for _ in range(int(rng.integers(1, 4))):
            for _try in range(50):  # keep centres apart: more than two cells of a 96 px input at stride 8
                cx, cy = rng.uniform(0.15, 0.85, 2)
                if all(abs(cx - o[1]) > 0.2 or abs(cy - o[2]) > 0.2 for o in objs):
                    break
            objs.append((int(rng.integers(0, 2)), float(cx), float(cy), float(rng.uniform(0.06, 0.1))))
        if border_every and i % border_every == 1:
            label, _, cy, r = objs[0]
            objs[0] = (label, 0.97, cy, r)  # crosses the right border
        scenes.append(objs)
    return scenes


def scene_boxes(scene: Scene, w: int, h: int) -> np.ndarray:
    """``(N, 5)`` rows ``x0, y0, x1, y1, label`` in pixels of a ``w`` x ``h`` image, clipped to it."""
    rows = []
    for label, cx, cy, r in scene:
        rad = r * min(w, h)
        x0, y0 = max(cx * w - rad, 0.0), max(cy * h - rad, 0.0)
        x1, y1 = min(cx * w + rad, float(w)), min(cy * h + rad, float(h))
        rows.append((round(x0), round(y0), round(x1), round(y1), label))
    return np.asarray(rows, dtype=np.float64).reshape(-1, 5)


def draw_scene(scene: Scene, w: int, h: int, seed: int = 0, gray: bool = False) -> np.ndarray:
    """BGR image (or grayscale when ``gray``) of ``scene``; shapes fill their clipped boxes' rounded corners."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 50, (h, w, 3), dtype=np.uint8)
    for (x0, y0, x1, y1, label), (_, cx, cy, r) in zip(scene_boxes(scene, w, h), scene):
        colour = COLOURS_BGR[int(label)]
        if label == 0:
            rad = r * min(w, h)
            cv2.ellipse(img, (int(round(cx * w * 16)), int(round(cy * h * 16))),
                        (int(round(rad * 16)), int(round(rad * 16))), 0, 0, 360, colour, -1, cv2.LINE_8, 4)
        else:
            cv2.rectangle(img, (int(x0), int(y0)), (int(x1) - 1, int(y1) - 1), colour, -1)
    return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if gray else img


def _pil(bgr: np.ndarray):
    from PIL import Image
    return Image.fromarray(np.ascontiguousarray(bgr[..., ::-1]))


def _save_exif_rotated(path: str, bgr: np.ndarray) -> None:
    """Store the pixels turned 90 degrees counter-clockwise with EXIF orientation 6 ("rotate 90 CW to
    view"), as a phone held upright does: a viewer that honours EXIF shows ``bgr``."""
    from PIL import Image
    exif = Image.Exif()
    exif[0x0112] = 6
    _pil(np.rot90(bgr, 1)).save(path, quality=95, exif=exif.tobytes())


# How an image file is written: name suffix and writer(path, bgr). All show the same picture.
IMAGE_KINDS = {
    'jpg': ('.jpg', lambda p, im: cv2.imwrite(p, im, [cv2.IMWRITE_JPEG_QUALITY, 95])),
    'png': ('.png', lambda p, im: cv2.imwrite(p, im)),
    'gray_jpg': ('.jpg', lambda p, im: cv2.imwrite(p, cv2.cvtColor(im, cv2.COLOR_BGR2GRAY))),
    'rgba_png': ('.png', lambda p, im: _pil(im).convert('RGBA').save(p)),
    'palette_png': ('.png', lambda p, im: _pil(im).quantize(64).save(p)),
    'png16': ('.png', lambda p, im: cv2.imwrite(p, im.astype(np.uint16) * 257)),
    'exif_rotated_jpg': ('.jpg', _save_exif_rotated),
    'bmp': ('.bmp', lambda p, im: cv2.imwrite(p, im)),
}


def write_coco_scenes(root: str, splits: Dict[str, Sequence[Scene]], size,
                      ext: str = '.jpg', kind: str = None) -> str:
    """A Roboflow COCO export (``<split>/_annotations.coco.json``) of the scenes at ``size`` = (w, h) (or a
    list of sizes, cycled per image).

    Images are PNG (lossless) when ``ext`` is ``.png``, else JPEG at quality 95, or of ``kind`` (a key of
    :data:`IMAGE_KINDS`, cycled per image when a list). Annotations are in the upright picture's pixels.
    """
    sizes = [tuple(size)] if isinstance(size[0], int) else [tuple(v) for v in size]
    kinds = [kind] if isinstance(kind, str) else list(kind or ['png' if ext == '.png' else 'jpg'])
    for split, scenes in splits.items():
        folder = osp.join(root, split)
        os.makedirs(folder, exist_ok=True)
        images, anns = [], []
        for i, scene in enumerate(scenes):
            w, h = sizes[i % len(sizes)]
            suffix, write = IMAGE_KINDS[kinds[i % len(kinds)]]
            name = f'{split}_{i:03d}{suffix}'
            write(osp.join(folder, name), draw_scene(scene, w, h, seed=i))
            images.append(dict(id=i, file_name=name, width=w, height=h))
            for x0, y0, x1, y1, label in scene_boxes(scene, w, h):
                anns.append(dict(id=len(anns) + 1, image_id=i, category_id=int(label) + 1, iscrowd=0,
                                 bbox=[x0, y0, x1 - x0, y1 - y0], area=(x1 - x0) * (y1 - y0), segmentation=[]))
        cats = [dict(id=0, name='shapes', supercategory='none')] + [
            dict(id=k + 1, name=n, supercategory='shapes') for k, n in enumerate(CLASSES)]
        with open(osp.join(folder, '_annotations.coco.json'), 'w') as f:
            json.dump(dict(info={}, licenses=[], categories=cats, images=images, annotations=anns), f)
    return root


class ColourOracle:
    """A fixed FOMO "network": per-cell probabilities from the colours of the (resized) input batch.

    Each red / green connected component of the input becomes one confident cell (0.95) of its class, at
    the cell holding the centre of the component's bounding box; everything else is background.

    Args:
        stride (int): Input pixels per output cell.
        num_classes (int): Object classes.
    """

    def __init__(self, stride: int = 8, num_classes: int = 2) -> None:
        self.stride = stride
        self.num_classes = num_classes

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        b, _, h, w = inputs.shape
        gh, gw = -(-h // self.stride), -(-w // self.stride)
        probs = torch.zeros(b, self.num_classes + 1, gh, gw)
        probs[:, 0] = 1.0
        for i in range(b):
            img = inputs[i].permute(1, 2, 0).numpy().astype(np.uint8)  # BGR as loaded
            for label, (bc, gc, rc) in enumerate(COLOURS_BGR):
                mask = ((img[..., 2] > 120) == bool(rc)) & ((img[..., 1] > 120) == bool(gc)) & \
                    ((img[..., 0] > 120) == bool(bc))
                n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
                for x, y, cw, ch, area in stats[1:]:
                    if area < 4:
                        continue
                    cx, cy = min(int((x + cw / 2) // self.stride), gw - 1), min(int((y + ch / 2) // self.stride),
                                                                               gh - 1)
                    probs[i, :, cy, cx] = 0.05 / self.num_classes
                    probs[i, label + 1, cy, cx] = 0.95
        return probs
