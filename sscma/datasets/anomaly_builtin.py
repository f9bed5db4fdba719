"""Default anomaly-detection datasets, generated offline in the MVTec-AD layout from real package pictures.

Three categories, as MVTec has textures and objects:

- ``surface``: crops of scikit-image's ``gravel`` photo (a stone surface), tinted, rotated and lit at random,
  176x132 pixels;
- ``coin``: one coin cut out of scikit-image's ``coins`` photo, centred on a belt-like background (scikit-image's
  ``grass`` photo blurred and darkened), turned at random, 120x120 pixels;
- ``document``: crops of scikit-image's ``page`` scan (printed text) on tinted paper, shifted and turned by up to
  3 degrees, 144x112 pixels.

``train/good`` holds only normal images; ``test`` holds normal images and four kinds of generated defects, each
with its mask in ``ground_truth/<defect>/<name>_mask.png``: ``scratch`` (a thin bright or dark polyline),
``stain`` (a soft tinted blot), ``hole`` (a missing piece filled with a dark cavity) and ``foreign`` (a face
crop from ``lfw_subset`` or a pebble of another texture lying on the part). Generated once into
``$SSCMA_DATA_HOME`` like the other default sets (:func:`~sscma.datasets.builtin.default_data_home`).
"""
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import cv2
import numpy as np

from .builtin import PathLike, _generate_once, _soft_mask, default_data_home

ANOMALY_CATEGORIES = ('surface', 'coin', 'document')
ANOMALY_DEFECTS = ('scratch', 'stain', 'hole', 'foreign')
ANOMALY_COUNTS = dict(train_good=160, test_good=40, test_defect=12)
_VERSION = 'v1'


class _Pictures:
    """The package pictures the categories are made of."""

    def __init__(self) -> None:
        from skimage import data

        from .builtin import _Sources
        self.gravel = data.gravel()
        self.grass = data.grass()
        self.brick = data.brick()
        self.page = data.page()
        sources = _Sources()
        self.coins = sources.coins  # (gray patch, soft alpha)
        self.faces = sources.faces


def _surface(pics: _Pictures, rng: np.random.Generator) -> np.ndarray:
    """A 176x132 RGB float32 crop of the gravel photo, turned by up to 180 degrees and lit at random."""
    w, h = 176, 132
    src = pics.gravel
    size = int(rng.integers(200, 260))
    cy, cx = (int(rng.integers(size // 2 + 40, s - size // 2 - 40)) for s in src.shape)
    m = cv2.getRotationMatrix2D((cx, cy), float(rng.uniform(-180, 180)), float(rng.uniform(0.95, 1.05)))
    m[:, 2] += (w / 2 - cx, h / 2 - cy)
    gray = cv2.warpAffine(src, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT).astype(np.float32)
    tint = np.array([1.0, 0.93, 0.82], np.float32) * rng.uniform(0.97, 1.03, 3).astype(np.float32)
    return (gray[..., None] * tint * rng.uniform(0.9, 1.1) + rng.uniform(-8, 8)).clip(0, 255)


def _coin(pics: _Pictures, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """A 120x120 RGB float32 image of one coin on a belt, and the coin's mask (bool)."""
    size = 120
    y, x = (int(rng.integers(0, s - size)) for s in pics.grass.shape)
    belt = cv2.GaussianBlur(pics.grass[y:y + size, x:x + size].astype(np.float32), (0, 0), 2.0) * 0.35 + 20
    img = np.repeat(belt[..., None], 3, axis=2) * np.array([0.9, 0.95, 1.0], np.float32)
    gray, alpha = pics.coins[int(rng.integers(len(pics.coins)))]
    scale = 78.0 / max(gray.shape)
    gray = cv2.resize(gray.astype(np.float32), None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    alpha = cv2.resize(alpha, (gray.shape[1], gray.shape[0]), interpolation=cv2.INTER_LINEAR)
    ph, pw = gray.shape
    m = cv2.getRotationMatrix2D((pw / 2, ph / 2), float(rng.uniform(0, 360)), 1.0)
    m[:, 2] += (size / 2 - pw / 2 + rng.uniform(-3, 3), size / 2 - ph / 2 + rng.uniform(-3, 3))
    gray = cv2.warpAffine(gray, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(alpha, m, (size, size), flags=cv2.INTER_LINEAR)[..., None]
    coin = gray[..., None] * np.array([1.0, 0.86, 0.6], np.float32) * rng.uniform(1.2, 1.4)
    img = img * (1 - alpha) + coin * alpha
    return (img * rng.uniform(0.93, 1.07)).clip(0, 255), alpha[..., 0] > 0.5


def _document(pics: _Pictures, rng: np.random.Generator) -> np.ndarray:
    """A 144x112 RGB float32 crop of the scanned page (printed text), shifted, slightly turned, on tinted paper."""
    w, h = 144, 112
    src = pics.page
    cy, cx = int(rng.integers(60, src.shape[0] - 60)), int(rng.integers(75, src.shape[1] - 75))
    m = cv2.getRotationMatrix2D((cx, cy), float(rng.uniform(-3, 3)), float(rng.uniform(0.95, 1.05)))
    m[:, 2] += (w / 2 - cx, h / 2 - cy)
    gray = cv2.warpAffine(src, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT).astype(np.float32)
    gray = (gray - gray.min()) / max(float(np.ptp(gray)), 1.0)  # the scan's uneven light, stretched
    paper = np.array([250, 245, 228], np.float32) * rng.uniform(0.9, 1.0)
    ink = np.array([30, 30, 45], np.float32)
    return (ink + gray[..., None] * (paper - ink)).clip(0, 255)


def _spot(rng: np.random.Generator, region: np.ndarray, margin: int = 6) -> Tuple[int, int]:
    """A random (x, y) inside ``region`` (bool mask), away from the image border."""
    h, w = region.shape
    inner = np.zeros_like(region)
    inner[margin:h - margin, margin:w - margin] = region[margin:h - margin, margin:w - margin]
    ys, xs = np.nonzero(inner)
    i = int(rng.integers(len(ys)))
    return int(xs[i]), int(ys[i])


def _scratch(img, rng, region, pics) -> np.ndarray:
    x, y = _spot(rng, region, 14)
    pts = [(x, y)]
    angle = rng.uniform(0, 2 * np.pi)
    for _ in range(int(rng.integers(2, 4))):
        angle += rng.uniform(-0.5, 0.5)
        step = rng.uniform(8, 16)
        pts.append((pts[-1][0] + step * np.cos(angle), pts[-1][1] + step * np.sin(angle)))
    mask = np.zeros(img.shape[:2], np.uint8)
    cv2.polylines(mask, [np.round(np.array(pts)).astype(np.int32)], False, 1, int(rng.integers(1, 3)),
                  cv2.LINE_AA)
    alpha = _soft_mask(mask, 0.5)[..., None]
    value = rng.choice([rng.uniform(5, 30), rng.uniform(220, 255)])
    img[:] = img * (1 - alpha) + value * alpha
    return mask > 0


def _stain(img, rng, region, pics) -> np.ndarray:
    x, y = _spot(rng, region, 10)
    mask = np.zeros(img.shape[:2], np.uint8)
    axes = (int(rng.integers(5, 12)), int(rng.integers(4, 9)))
    cv2.ellipse(mask, (x, y), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    alpha = (cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 1.5) * rng.uniform(0.6, 0.85))[..., None]
    colour = np.array([rng.uniform(60, 110), rng.uniform(40, 80), rng.uniform(10, 40)], np.float32)
    img[:] = img * (1 - alpha) + colour * alpha
    return alpha[..., 0] > 0.25


def _hole(img, rng, region, pics) -> np.ndarray:
    x, y = _spot(rng, region, 12)
    n = int(rng.integers(5, 9))
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    radii = rng.uniform(4, 10, n)
    poly = np.stack([x + radii * np.cos(angles), y + radii * np.sin(angles)], 1).round().astype(np.int32)
    mask = np.zeros(img.shape[:2], np.uint8)
    cv2.fillPoly(mask, [poly], 1)
    alpha = _soft_mask(mask, 0.7)[..., None]
    dist = cv2.distanceTransform(mask, cv2.DIST_L2, 3)[..., None]
    cavity = 10 + 25 * np.exp(-dist / 3.0)  # a dark pit, lighter at its rim
    img[:] = img * (1 - alpha) + cavity * alpha
    return mask > 0


def _foreign(img, rng, region, pics) -> np.ndarray:
    x, y = _spot(rng, region, 12)
    size = int(rng.integers(10, 18))
    if rng.random() < 0.5:
        face = pics.faces[int(rng.integers(len(pics.faces)))]
        patch = cv2.resize(face, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
        patch = patch[..., None] * np.array([1.0, 0.82, 0.68], np.float32)
    else:
        sy, sx = (int(rng.integers(0, s - 64)) for s in pics.brick.shape)
        patch = cv2.resize(pics.brick[sy:sy + 64, sx:sx + 64], (size, size), interpolation=cv2.INTER_AREA)
        patch = np.repeat(patch[..., None].astype(np.float32), 3, axis=2) * np.array([0.8, 0.9, 1.1], np.float32)
    disc = np.zeros((size, size), np.uint8)
    cv2.ellipse(disc, (size // 2, size // 2), (size // 2 - 1, int(size * rng.uniform(0.3, 0.48))),
                float(rng.uniform(0, 180)), 0, 360, 1, -1)
    mask = np.zeros(img.shape[:2], np.uint8)
    h, w = mask.shape
    x0, y0 = min(max(x - size // 2, 0), w - size), min(max(y - size // 2, 0), h - size)
    mask[y0:y0 + size, x0:x0 + size] = disc
    alpha = _soft_mask(disc, 0.6)[..., None]
    img[y0:y0 + size, x0:x0 + size] = img[y0:y0 + size, x0:x0 + size] * (1 - alpha) + patch * alpha
    return mask > 0


DEFECT_MAKERS: Dict[str, Callable] = dict(scratch=_scratch, stain=_stain, hole=_hole, foreign=_foreign)


def _normal(pics: _Pictures, rng: np.random.Generator, category: str) -> Tuple[np.ndarray, np.ndarray]:
    """A normal image of ``category`` and the region its defects may fall in."""
    if category == 'coin':
        return _coin(pics, rng)
    img = _surface(pics, rng) if category == 'surface' else _document(pics, rng)
    return img, np.ones(img.shape[:2], bool)


def _write(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb.round().clip(0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR))


def write_anomaly_category(folder: Path, category: str, pics: Optional[_Pictures] = None,
                           counts: Optional[Dict[str, int]] = None, seed: int = 0) -> None:
    """Write one category in the MVTec-AD layout under ``folder`` (see the module docstring)."""
    if category not in ANOMALY_CATEGORIES:
        raise ValueError(f'category {category!r}: expected one of {ANOMALY_CATEGORIES}')
    pics = pics or _Pictures()
    counts = dict(ANOMALY_COUNTS, **(counts or {}))
    rng = np.random.default_rng([seed, ANOMALY_CATEGORIES.index(category)])
    for i in range(counts['train_good']):
        _write(folder / 'train' / 'good' / f'{i:03d}.png', _normal(pics, rng, category)[0])
    for i in range(counts['test_good']):
        _write(folder / 'test' / 'good' / f'{i:03d}.png', _normal(pics, rng, category)[0])
    for defect in ANOMALY_DEFECTS:
        for i in range(counts['test_defect']):
            img, region = _normal(pics, rng, category)
            mask = DEFECT_MAKERS[defect](img, rng, region, pics)
            _write(folder / 'test' / defect / f'{i:03d}.png', img)
            mask_path = folder / 'ground_truth' / defect / f'{i:03d}_mask.png'
            mask_path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(mask_path), mask.astype(np.uint8) * 255)
    (folder / 'README.txt').write_text(
        f'sscma generated anomaly set "{category}" ({_VERSION}), MVTec-AD layout. Pictures: scikit-image sample '
        'images (gravel, grass, brick, page, coins, lfw_subset), '
        'https://scikit-image.org/docs/stable/api/skimage.data.html\n')


def ensure_anomaly_category(category: str, root: Optional[PathLike] = None) -> Path:
    """The generated ``category`` set (``surface`` or ``coin``), written on first use; returns its folder."""
    if category not in ANOMALY_CATEGORIES:
        raise ValueError(f'builtin={category!r}: the generated anomaly sets are {list(ANOMALY_CATEGORIES)}')
    root = Path(root) if root else default_data_home() / f'anomaly_{category}_{_VERSION}'
    return _generate_once(root, lambda tmp: write_anomaly_category(tmp, category))

