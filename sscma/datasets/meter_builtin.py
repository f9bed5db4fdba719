"""Built-in analog-meter keypoint dataset, drawn offline with OpenCV on real textures.

Each image shows one round gauge: a bezel, a dial face, a graduated scale (major and minor ticks, optional
numbers, coloured zones and unit text), a needle pointing at a random reading within the scale's sweep,
and a hub. The gauge is composited on a crop of a real photo or texture shipped with scikit-image /
scikit-learn, warped by a mild random homography (the same homography moves the keypoints), lit unevenly,
blurred, noised and JPEG-compressed.

Keypoints, in this order (COCO-keypoints json, ``[x, y, v] * 4`` per annotation):

0. ``center``       -- the needle's pivot,
1. ``needle_tip``   -- the needle's tip,
2. ``scale_start``  -- the middle of the first major tick (reading 0),
3. ``scale_end``    -- the middle of the last major tick (reading 1).

Scales run clockwise in the image from ``scale_start`` to ``scale_end`` over 90-300 degrees. Coordinates
are in pixels with the image's top-left *corner* at (0, 0) (the centre of the top-left pixel is
(0.5, 0.5)), so resizing multiplies them by the scale factor. Each annotation also carries the
true ``reading`` (0..1, before the perspective warp) and ``sweep_deg``.
"""
import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Dict, List, Optional, Tuple, Union

import cv2
import numpy as np

from .builtin import _background, _generate_once, default_data_home

PathLike = Union[str, Path]
METER_NAME = 'meters_v1'
METER_KEYPOINTS = ('center', 'needle_tip', 'scale_start', 'scale_end')
METER_SPLITS = (('train', 1600, 11), ('valid', 200, 12), ('test', 200, 13))  # name, images, seed
METER_SIZE = 192
SUPERSAMPLE = 2  # drawn at 2x then reduced with INTER_AREA (anti-aliasing)
_SHIFT = 4  # cv2 sub-pixel drawing: coordinates * 16
_UNITS = ('bar', 'psi', 'kPa', 'MPa', 'V', 'A', 'mA', 'kg/cm2', '%', 'x100', 'C')


def _backgrounds() -> List[np.ndarray]:
    from skimage import data
    from sklearn.datasets import load_sample_images
    gray = [data.brick(), data.grass(), data.gravel(), data.text(), data.page(), data.camera()]
    color = [data.coffee(), data.rocket(), data.chelsea(), data.astronaut()] + list(load_sample_images().images)
    return [cv2.cvtColor(g, cv2.COLOR_GRAY2RGB) for g in gray] + [np.ascontiguousarray(c[..., :3]) for c in color]


def _p(pt) -> Tuple[int, int]:
    """Sub-pixel point for cv2 drawing with ``shift=_SHIFT`` (cv2 pixel-centre coordinates)."""
    return int(round(pt[0] * (1 << _SHIFT))), int(round(pt[1] * (1 << _SHIFT)))


def _polar(c: np.ndarray, r: float, angle: float) -> np.ndarray:
    return c + r * np.array([math.cos(angle), math.sin(angle)])


def _ink(rng: np.random.Generator, light_face: bool) -> Tuple[float, float, float]:
    if light_face:
        v = rng.uniform(0, 60)
        return (v, v, v + rng.uniform(0, 30))
    v = rng.uniform(200, 255)
    return (v, v, v)


def _draw_meter(rng: np.random.Generator, big: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """Draw one gauge on a ``big`` x ``big`` RGB layer with its alpha mask.

    Returns the layer and alpha (uint8), the 4 keypoints (cv2 pixel-centre coordinates of the layer), the
    true reading and the sweep in degrees.
    """
    layer = np.zeros((big, big, 3), np.uint8)
    alpha = np.zeros((big, big), np.uint8)
    radius = rng.uniform(0.30, 0.45) * big
    margin = radius * 1.02
    c = np.array([rng.uniform(max(margin, 0.38 * big), min(big - margin, 0.62 * big)) for _ in range(2)])
    if rng.random() < 0.1:  # some gauges fill the frame and are cut by the border
        radius = rng.uniform(0.46, 0.55) * big

    # bezel, face
    bezel_w = radius * rng.uniform(0.04, 0.14)
    metal = rng.uniform(90, 230)
    bezel = tuple(float(v) for v in np.clip(metal + rng.uniform(-25, 25, 3), 0, 255))
    if rng.random() < 0.25:
        bezel = tuple(float(v) for v in rng.uniform(0, 255, 3))
    cv2.circle(layer, _p(c), int(radius * 16), bezel, -1, cv2.LINE_AA, _SHIFT)
    cv2.circle(alpha, _p(c), int(radius * 16), 255, -1, cv2.LINE_AA, _SHIFT)
    face_r = radius - bezel_w
    kind = rng.random()
    light = kind < 0.75
    if kind < 0.6:
        face = tuple(float(v) for v in np.clip(rng.uniform(225, 255) + rng.uniform(-12, 6, 3), 0, 255))
    elif kind < 0.75:
        face = tuple(float(v) for v in rng.uniform(150, 255, 3))
    else:
        face = tuple(float(v) for v in rng.uniform(0, 60, 3))
    cv2.circle(layer, _p(c), int(face_r * 16), face, -1, cv2.LINE_AA, _SHIFT)
    if rng.random() < 0.5:  # inner rim line
        cv2.circle(layer, _p(c), int(face_r * rng.uniform(0.95, 1.0) * 16), _ink(rng, light), 1, cv2.LINE_AA,
                   _SHIFT)
    ink = _ink(rng, light)

    # scale geometry (image angles: y points down, so increasing angles turn clockwise on screen)
    sweep = float(rng.choice([rng.uniform(90, 300), 270.0, 240.0, 180.0], p=[0.55, 0.25, 0.1, 0.1]))
    rot = rng.normal(0, 12) if rng.random() < 0.85 else rng.uniform(-70, 70)
    start = math.radians(-90 - sweep / 2 + rot)
    sweep_r = math.radians(sweep)
    end = start + sweep_r
    tick_r = face_r * rng.uniform(0.78, 0.92)
    major_len = face_r * rng.uniform(0.10, 0.18)
    inward = rng.random() < 0.8  # ticks drawn inward from the ring, else outward
    n_major = int(rng.integers(4, 11))
    n_minor = int(rng.choice([0, 1, 2, 4, 5]))
    thick = max(1, int(round(face_r * rng.uniform(0.012, 0.03))))

    if rng.random() < 0.4:  # coloured zone along the ring
        z0 = rng.uniform(0.5, 0.85)
        zone = [(0.9, 30, 30), (30, 160, 60), (240, 180, 20)][int(rng.integers(3))]
        zr = tick_r - major_len * (0.3 if inward else -0.3)
        cv2.ellipse(layer, _p(c), (int(zr * 16), int(zr * 16)), 0, math.degrees(start + z0 * sweep_r),
                    math.degrees(end), tuple(float(v) for v in zone), max(2, int(major_len * 0.5)), cv2.LINE_AA, _SHIFT)
    if rng.random() < 0.6:  # the scale's arc
        cv2.ellipse(layer, _p(c), (int(tick_r * 16), int(tick_r * 16)), 0, math.degrees(start), math.degrees(end),
                    ink, thick, cv2.LINE_AA, _SHIFT)

    sign = -1 if inward else 1
    for i in range(n_major * (n_minor + 1) + 1):
        a = start + sweep_r * i / (n_major * (n_minor + 1))
        is_major = i % (n_minor + 1) == 0
        length = major_len if is_major else major_len * rng.uniform(0.45, 0.6)
        p0, p1 = _polar(c, tick_r, a), _polar(c, tick_r + sign * length, a)
        cv2.line(layer, _p(p0), _p(p1), ink, thick + (1 if is_major and thick < 3 else 0), cv2.LINE_AA, _SHIFT)
    start_pt = _polar(c, tick_r + sign * major_len / 2, start)
    end_pt = _polar(c, tick_r + sign * major_len / 2, end)

    font = cv2.FONT_HERSHEY_SIMPLEX if rng.random() < 0.7 else cv2.FONT_HERSHEY_DUPLEX
    scale = face_r / 150 * rng.uniform(0.7, 1.1)
    if rng.random() < 0.65:  # numbers at the major ticks
        step = float(rng.choice([1, 2, 5, 10, 20, 0.5]))
        num_r = tick_r - (major_len if inward else 0.0) - face_r * 0.13
        for i in range(n_major + 1):
            a = start + sweep_r * i / n_major
            text = f'{i * step:g}'
            (tw, th), _ = cv2.getTextSize(text, font, scale, 1)
            q = _polar(c, num_r, a)
            cv2.putText(layer, text, (int(q[0] - tw / 2), int(q[1] + th / 2)), font, scale, ink, 1, cv2.LINE_AA)
    if rng.random() < 0.6:  # unit label
        text = str(rng.choice(_UNITS))
        (tw, th), _ = cv2.getTextSize(text, font, scale * 1.1, 1)
        q = c + np.array([0, face_r * rng.uniform(0.3, 0.5)])
        cv2.putText(layer, text, (int(q[0] - tw / 2), int(q[1] + th / 2)), font, scale * 1.1, ink, 1, cv2.LINE_AA)

    # needle
    r = rng.random()
    reading = 0.0 if r < 0.03 else 1.0 if r < 0.06 else float(rng.uniform(0, 1))
    angle = start + reading * sweep_r
    tip_len = tick_r * rng.uniform(0.8, 1.02) if inward else tick_r * rng.uniform(0.85, 1.0)
    tail_len = face_r * rng.uniform(0.0, 0.25)
    width = face_r * rng.uniform(0.025, 0.06)
    tip = _polar(c, tip_len, angle)
    tail = _polar(c, -tail_len, angle)
    normal = np.array([-math.sin(angle), math.cos(angle)])
    needle_cols = [(220, 30, 30), (20, 20, 20), (240, 120, 20), (30, 30, 160)]
    needle_col = needle_cols[int(rng.choice(4, p=[0.5, 0.3, 0.1, 0.1]))]
    if not light:  # a dark face gets a bright needle
        needle_col = [(240, 240, 240), (230, 40, 30), (250, 150, 30)][int(rng.integers(3))]
    poly = np.array([_p(tip), _p(c + normal * width), _p(tail + normal * width * 0.7),
                     _p(tail - normal * width * 0.7), _p(c - normal * width)], np.int32)
    if rng.random() < 0.12:  # needle shadow
        off = np.array([_p((face_r * 0.02, face_r * 0.03))], np.int32)
        cv2.fillPoly(layer, [poly + off], tuple(0.6 * np.array(face)), cv2.LINE_AA, _SHIFT)
    cv2.fillPoly(layer, [poly], tuple(float(v) for v in needle_col), cv2.LINE_AA, _SHIFT)
    hub_r = face_r * rng.uniform(0.04, 0.11)
    hub_col = needle_col
    if rng.random() >= 0.5:  # a metal hub
        hub_col = tuple(float(v) for v in np.clip(metal + rng.uniform(-60, 20, 3), 0, 255))
    cv2.circle(layer, _p(c), int(hub_r * 16), hub_col, -1, cv2.LINE_AA, _SHIFT)
    if rng.random() < 0.5:
        cv2.circle(layer, _p(c), int(hub_r * 0.4 * 16), tuple(0.5 * np.array(hub_col)), -1, cv2.LINE_AA, _SHIFT)

    keypoints = np.stack([c, tip, start_pt, end_pt]).astype(np.float64)
    if rng.random() < 0.5:  # glass glare, drawn at quarter resolution and blurred there (cheap)
        q = 4
        mask = np.zeros((big // q, big // q), np.uint8)
        g_c = (c + rng.uniform(-0.5, 0.5, 2) * face_r) / q
        axes = (int(face_r / q * rng.uniform(0.3, 0.8) * 16), int(face_r / q * rng.uniform(0.1, 0.35) * 16))
        cv2.ellipse(mask, _p(g_c), axes, rng.uniform(0, 180), 0, 360, 255, -1, cv2.LINE_AA, _SHIFT)
        mask = cv2.GaussianBlur(mask, (0, 0), face_r / q * 0.08)
        g = cv2.resize(mask, (big, big), interpolation=cv2.INTER_LINEAR).astype(np.float32)[..., None] * (
            rng.uniform(0.15, 0.45) / 255)
        layer = (layer * (1 - g) + 255 * g).astype(np.uint8)
    return layer, alpha, keypoints, reading, sweep


def _render(backgrounds: List[np.ndarray], rng: np.random.Generator, size: int) -> Tuple[np.ndarray, Dict]:
    """One image (RGB uint8, ``size`` x ``size``) and its annotation fields."""
    big = size * SUPERSAMPLE
    while True:
        layer, alpha, kpts, reading, sweep = _draw_meter(rng, big)
        # mild perspective: move each corner by up to 7 % of the side
        src = np.float32([[0, 0], [big - 1, 0], [big - 1, big - 1], [0, big - 1]])
        dst = (src + rng.uniform(-0.07, 0.07, (4, 2)) * big * rng.uniform(0.3, 1.0)).astype(np.float32)
        homography = cv2.getPerspectiveTransform(src, dst)
        kpts = cv2.perspectiveTransform(kpts[None].astype(np.float64), homography)[0]
        # corner convention, then the reduced image
        kpts = (kpts + 0.5) / SUPERSAMPLE
        if (kpts >= 1).all() and (kpts <= size - 1).all():
            break
    rgba = cv2.warpPerspective(np.dstack([layer, alpha]), homography, (big, big), flags=cv2.INTER_LINEAR)
    rgba = cv2.resize(rgba, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
    layer, alpha = rgba[..., :3], rgba[..., 3] / 255
    img = _background(SimpleNamespace(backgrounds=backgrounds), rng, size)
    if rng.random() < 0.3:  # drop shadow
        shadow = cv2.GaussianBlur(alpha, (0, 0), size * 0.02)
        shift = np.float32([[1, 0, size * rng.uniform(-0.03, 0.03)], [0, 1, size * rng.uniform(0, 0.04)]])
        shadow = cv2.warpAffine(shadow, shift, (size, size)) * rng.uniform(0.3, 0.6)
        img = img * (1 - shadow[..., None])
    img = img * (1 - alpha[..., None]) + layer * alpha[..., None]
    if rng.random() < 0.5:  # uneven light
        ramp = np.linspace(-0.5, 0.5, size, dtype=np.float32)
        d = rng.uniform(-1, 1, 2) * rng.uniform(0.1, 0.45)
        img = img * (1 + ramp[None, :, None] * d[0] + ramp[:, None, None] * d[1])
    if rng.random() < 0.6:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 1.1))
    img = img * rng.uniform(0.75, 1.15) + (rng.uniform(-25, 20) + rng.uniform(-10, 10, 3)).astype(np.float32)
    img = img + rng.standard_normal(img.shape, dtype=np.float32) * rng.uniform(0, 7)
    ys, xs = np.nonzero(alpha > 0.5)
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    ann = dict(keypoints=kpts, bbox=[float(x0), float(y0), float(x1 - x0), float(y1 - y0)], reading=reading,
               sweep_deg=sweep)
    return img.clip(0, 255).astype(np.uint8), ann


def write_meter_split(folder: Path, count: int, seed: int, size: int = METER_SIZE,
                      backgrounds: Optional[List[np.ndarray]] = None) -> Path:
    """Write ``count`` gauges and ``_annotations.coco.json`` into ``folder`` (Roboflow layout)."""
    backgrounds = backgrounds if backgrounds is not None else _backgrounds()
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    images: List[Dict] = []
    anns: List[Dict] = []
    for i in range(count):
        img, ann = _render(backgrounds, rng, size)
        name = f'{folder.name}_{i:04d}.jpg'
        quality = int(rng.integers(70, 96))
        cv2.imwrite(str(folder / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        images.append(dict(id=i, file_name=name, width=size, height=size))
        flat = []
        for x, y in ann['keypoints']:
            flat += [round(float(x), 3), round(float(y), 3), 2]
        box = ann['bbox']
        anns.append(dict(id=i, image_id=i, category_id=1, bbox=box, area=box[2] * box[3], iscrowd=0,
                         segmentation=[], keypoints=flat, num_keypoints=len(METER_KEYPOINTS),
                         reading=round(ann['reading'], 5), sweep_deg=round(ann['sweep_deg'], 3)))
    coco = dict(info=dict(description='sscma built-in analog meters', version='1'), licenses=[],
                categories=[dict(id=1, name='meter', supercategory='meter', keypoints=list(METER_KEYPOINTS),
                                 skeleton=[[1, 2], [1, 3], [1, 4]])],
                images=images, annotations=anns)
    with open(folder / '_annotations.coco.json', 'w') as f:
        json.dump(coco, f)
    return folder


def ensure_meter_coco(root: Optional[PathLike] = None, size: int = METER_SIZE,
                      splits: Tuple[Tuple[str, int, int], ...] = METER_SPLITS) -> Path:
    """Generate the default analog-meter keypoint dataset once, in the Roboflow COCO-keypoints layout.

    ``train/`` (1,600 images), ``valid/`` (200) and ``test/`` (200), each with ``_annotations.coco.json``
    and ``size`` x ``size`` JPEGs (192 by default) beside it; one meter per image with the 4 keypoints
    ``center``, ``needle_tip``, ``scale_start``, ``scale_end``. Deterministic; about 25 s on 2 cores.

    Args:
        root: Where to write; default ``default_data_home() / 'meters_v1'``. Nothing is done when it exists.
        size: Image side in pixels.
        splits: ``(name, images, seed)`` per split.
    """
    root = Path(root) if root else default_data_home() / METER_NAME

    def write(out: Path) -> None:
        backgrounds = _backgrounds()
        for split, count, seed in splits:
            write_meter_split(out / split, count, seed, size, backgrounds)

    return _generate_once(root, write)
