"""Default datasets generated offline from real images that ship inside installed packages.

Nothing is downloaded: the digits come from scikit-learn, the coins, faces and backgrounds from
scikit-image and scikit-learn. Each dataset is generated once, deterministically, into a temporary folder
that is renamed into place when complete, so an interrupted generation never looks finished. The version
suffix of a folder name (``_v1``) changes whenever its recipe does, so an old copy is never reused.
"""
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple, Union

import cv2
import numpy as np

PathLike = Union[str, Path]

DIGITS_NAME = 'digits_v1'
DIGITS_SIZE = 32
DIGITS_SPLITS = ('training', 'validation', 'test')  # 70 / 15 / 15 %

# v1 was an interim recipe (hard masks, no rotation, shared object pools); v2 is the one described below.
FOMO_NAME = 'fomo_objects_v2'
FOMO_SIZE = 96
FOMO_SPLITS = (('train', 600, 1), ('valid', 150, 2), ('test', 150, 3))  # name, images, seed
FOMO_CLASSES = ('coin', 'face')
FOMO_OBJECT_PX = (12, 28)  # longest side of an object, before any cut by the border
FOMO_MAX_OBJECTS = 5
FOMO_EMPTY_RATE = 0.05
FOMO_BORDER_RATE = 0.10
FOMO_MIN_VISIBLE = 0.4  # an object cut by the border or covered keeps at least this part of its mask
FOMO_MIN_CENTRE_DIST = 10.0
_STALE_TMP_S = 24 * 3600  # temporary folders older than this come from a killed generation


def default_data_home() -> Path:
    """``$SSCMA_DATA_HOME``, else ``$SSCMA_HOME/data``, else ``~/.cache/sscma/data``."""
    if os.environ.get('SSCMA_DATA_HOME'):
        return Path(os.environ['SSCMA_DATA_HOME']).expanduser()
    home = os.environ.get('SSCMA_HOME') or os.path.join(os.path.expanduser('~'), '.cache', 'sscma')
    return Path(home).expanduser() / 'data'


def _generate_once(root: Path, write: Callable[[Path], None]) -> Path:
    """Run ``write(tmp_dir)`` in a sibling temporary folder and rename it to ``root`` when done.

    Nothing is done when ``root`` already exists and is not empty: it can only have come from a completed
    rename (or from the user). Another process finishing first is not an error.
    """
    root = Path(root)
    if root.is_dir() and any(root.iterdir()):
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    prefix = f'.{root.name}.tmp-'
    now = time.time()
    for old in root.parent.glob(prefix + '*'):  # left behind by a killed generation
        try:
            if now - old.stat().st_mtime > _STALE_TMP_S:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=root.parent))
    try:
        write(tmp)
        if root.is_dir() and not any(root.iterdir()):
            root.rmdir()
        os.replace(tmp, root)
    except OSError:
        if not (root.is_dir() and any(root.iterdir())):  # a real failure, not another process finishing first
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


# ----------------------------------------------------------------------------------------------- digits


def ensure_digits_folder(root: Optional[PathLike] = None) -> Path:
    """Write scikit-learn's 1,797 handwritten digits once as a Sony-layout class-folder dataset.

    ``training/``, ``validation/`` and ``test/`` (70/15/15 %, stratified, fixed seed, no image in two
    splits) each hold folders ``0``..``9`` of 32x32 RGB PNGs (the 8x8 originals, 0..16, scaled to 0..255
    and upscaled bilinearly; white digit on black). ``labels.json`` maps ``"0"``..``"9"`` to ids 0..9.

    Args:
        root: Where to write; default ``default_data_home() / 'digits_v1'``. Nothing is done when it exists.

    Returns:
        Path: The dataset root.
    """
    root = Path(root) if root else default_data_home() / DIGITS_NAME

    def write(out: Path) -> None:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
        digits = load_digits()
        idx = np.arange(len(digits.target))
        train, rest = train_test_split(idx, test_size=0.3, stratify=digits.target, random_state=0)
        val, test = train_test_split(rest, test_size=0.5, stratify=digits.target[rest], random_state=0)
        for split, ids in zip(DIGITS_SPLITS, (train, val, test)):
            for i in sorted(ids):
                img = (digits.images[i] * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
                img = cv2.resize(img, (DIGITS_SIZE, DIGITS_SIZE), interpolation=cv2.INTER_LINEAR)
                folder = out / split / str(digits.target[i])
                folder.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(folder / f'{i:04d}.png'), cv2.cvtColor(img, cv2.COLOR_GRAY2BGR))
        with open(out / 'labels.json', 'w') as f:
            json.dump({str(c): c for c in range(10)}, f, indent=1)

    return _generate_once(root, write)


# ------------------------------------------------------------------------------------------- fomo objects


def _soft_mask(mask: np.ndarray, sigma: float = 0.6) -> np.ndarray:
    """Anti-aliased alpha (float32 0..1) from a binary mask."""
    return cv2.GaussianBlur(mask.astype(np.float32), (0, 0), sigma).clip(0, 1)


class _Sources:
    """Real image content for the FOMO set: backgrounds, coin cut-outs and face crops.

    ``coins`` and ``faces`` are lists of ``(gray uint8 patch, alpha float32)``. ``pools[split]`` gives the
    indices of the coins and faces a split draws from: train, valid and test use different ones.
    """

    def __init__(self) -> None:
        from scipy import ndimage
        from skimage import data, filters, measure, segmentation
        from sklearn.datasets import load_sample_images

        # No backgrounds with people in them (astronaut, camera): an unlabelled face would be a false label.
        gray = [data.brick(), data.grass(), data.gravel(), data.moon(), data.text(), data.page()]
        color = [data.coffee(), data.rocket()] + list(load_sample_images().images)
        self.backgrounds = [cv2.cvtColor(g, cv2.COLOR_GRAY2RGB) for g in gray] + color

        # Coins: sobel + watershed from sure-dark / sure-bright markers separates all 24 coins of the photo.
        coins = data.coins()
        markers = np.zeros_like(coins, dtype=np.int32)
        markers[coins < 30] = 1
        markers[coins > 150] = 2
        mask = ndimage.binary_fill_holes(segmentation.watershed(filters.sobel(coins), markers) - 1)
        self.coins: List[Tuple[np.ndarray, np.ndarray]] = []
        pad = 2
        labels = measure.label(mask)
        for region in measure.regionprops(labels):
            if not 800 <= region.area <= 5000 or region.eccentricity > 0.7 or region.solidity < 0.9:
                continue
            y0, x0, y1, x1 = region.bbox
            y0, x0 = max(y0 - pad, 0), max(x0 - pad, 0)
            y1, x1 = min(y1 + pad, coins.shape[0]), min(x1 + pad, coins.shape[1])
            m = ndimage.binary_fill_holes(labels[y0:y1, x0:x1] == region.label)
            self.coins.append((coins[y0:y1, x0:x1].copy(), _soft_mask(m)))

        # Faces: the first 100 images of lfw_subset are 25x25 faces; a soft ellipse hides the corners.
        faces = data.lfw_subset()[:100]
        self.faces = [(f * 255).clip(0, 255).astype(np.uint8) for f in faces]
        yy, xx = np.mgrid[:25, :25].astype(np.float32)
        r = np.sqrt(((xx - 12) / 11.0)**2 + ((yy - 12.5) / 13.0)**2)
        self.face_alpha = ((1.0 - r) / 0.2 + 0.5).clip(0, 1).astype(np.float32)  # 0.5 at the ellipse

        rng = np.random.default_rng(12345)
        self.pools: Dict[str, Tuple[np.ndarray, np.ndarray]] = {}
        parts = {}
        for kind, n in (('coin', len(self.coins)), ('face', len(self.faces))):
            order = rng.permutation(n)
            n_val = max(2, round(0.15 * n))
            parts[kind] = dict(valid=order[:n_val], test=order[n_val:2 * n_val], train=order[2 * n_val:])
        for split, _, _ in FOMO_SPLITS:
            self.pools[split] = (parts['coin'][split], parts['face'][split])


def _background(src, rng: np.random.Generator, size: int) -> np.ndarray:
    """A random crop (random scale, horizontal flip) of ``src.backgrounds`` with brightness/contrast jitter.

    Returns a float32 RGB image ``size`` x ``size`` in 0..255. Shared with the meter dataset.
    """
    img = src.backgrounds[rng.integers(len(src.backgrounds))]
    h, w = img.shape[:2]
    crop = int(rng.integers(min(96, h, w), min(h, w, 320) + 1))
    y, x = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
    out = cv2.resize(img[y:y + crop, x:x + crop], (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    out = out * rng.uniform(0.6, 1.2) + rng.uniform(-30, 30) + rng.uniform(-15, 15, size=3)
    return out.clip(0, 255)


def _object(src: _Sources, rng: np.random.Generator, cls: int, pool: np.ndarray,
            size: int) -> Tuple[np.ndarray, np.ndarray]:
    """An RGB patch (float32) and its alpha whose visible mask (alpha > 0.5) has longest side ``size``."""
    i = int(pool[rng.integers(len(pool))])
    if cls == 0:
        gray, alpha = src.coins[i]
        tint = (np.array([0.95, 0.97, 1.0]), np.array([1.0, 0.85, 0.55]), np.array([1.0, 0.72, 0.5]))[
            rng.integers(3)] * rng.uniform(0.9, 1.1, 3)
        gain = rng.uniform(0.9, 1.5)  # the photo's coins are dim
    else:
        gray, alpha = src.faces[i], src.face_alpha
        tint = np.array([1.0, 0.82, 0.68]) * rng.uniform(0.8, 1.15, 3)
        gain = rng.uniform(0.75, 1.25)
    patch = gray.astype(np.float32)
    if rng.random() < 0.5:
        patch, alpha = patch[:, ::-1], alpha[:, ::-1]
    # small rotation at the source resolution, on a canvas large enough for the rotated patch
    h, w = alpha.shape
    angle = float(rng.uniform(-15, 15))
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    cw = int(np.ceil(h * abs(m[0, 1]) + w * abs(m[0, 0]))) + 2
    ch = int(np.ceil(h * abs(m[0, 0]) + w * abs(m[0, 1]))) + 2
    m[:, 2] += (cw / 2 - w / 2, ch / 2 - h / 2)
    patch = cv2.warpAffine(np.ascontiguousarray(patch), m, (cw, ch), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(np.ascontiguousarray(alpha), m, (cw, ch), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    # scale so that the visible mask has the requested longest side, keep a 1 px soft margin
    ys, xs = np.nonzero(alpha > 0.5)
    scale = size / max(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
    margin = int(np.ceil(1 / scale))
    y0, x0 = max(ys.min() - margin, 0), max(xs.min() - margin, 0)
    y1, x1 = min(ys.max() + 1 + margin, ch), min(xs.max() + 1 + margin, cw)
    patch, alpha = patch[y0:y1, x0:x1], alpha[y0:y1, x0:x1]
    dsize = (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    patch = cv2.resize(patch, dsize, interpolation=interp)
    alpha = cv2.resize(alpha, dsize, interpolation=interp)
    rgb = patch[..., None] * gain * tint[None, None].astype(np.float32) + rng.uniform(-15, 15)
    return rgb.clip(0, 255).astype(np.float32), alpha.clip(0, 1).astype(np.float32)


def _place(rng: np.random.Generator, pw: int, ph: int, size: int, cut: bool) -> Tuple[int, int]:
    """Top-left corner of a ``pw`` x ``ph`` patch: inside the image, or across one border when ``cut``."""
    if not cut:
        return int(rng.integers(0, size - pw + 1)), int(rng.integers(0, size - ph + 1))
    side = int(rng.integers(4))
    inside = rng.uniform(0.45, 0.85)  # part of the patch's extent that stays inside along the cut axis
    x0, y0 = int(rng.integers(0, size - pw + 1)), int(rng.integers(0, size - ph + 1))
    if side == 0:
        x0 = -int(round((1 - inside) * pw))
    elif side == 1:
        x0 = size - int(round(inside * pw))
    elif side == 2:
        y0 = -int(round((1 - inside) * ph))
    else:
        y0 = size - int(round(inside * ph))
    return x0, y0


def _compose(src: _Sources, rng: np.random.Generator, split: str,
             size: int = FOMO_SIZE) -> Tuple[np.ndarray, List[Tuple[int, List[float], bool]]]:
    """One image (RGB uint8) and its objects ``(class index, [x, y, w, h], cut by the border)``."""
    img = _background(src, rng, size)
    if rng.random() < 0.5:
        img = img[::-1]
    n = 0 if rng.random() < FOMO_EMPTY_RATE else int(rng.integers(1, FOMO_MAX_OBJECTS + 1))
    layers: List[Tuple[int, np.ndarray, float, bool]] = []  # class, full-image alpha, full mask area, cut
    centres: List[Tuple[float, float, float]] = []  # x, y, longest side
    for _ in range(n):
        cls = int(rng.integers(len(FOMO_CLASSES)))
        length = int(rng.integers(FOMO_OBJECT_PX[0], FOMO_OBJECT_PX[1] + 1))
        patch, alpha = _object(src, rng, cls, src.pools[split][cls], length)
        ph, pw = alpha.shape
        full_area = float((alpha > 0.5).sum())
        cut = bool(rng.random() < FOMO_BORDER_RATE)
        for _attempt in range(30):
            x0, y0 = _place(rng, pw, ph, size, cut)
            c = (x0 + pw / 2, y0 + ph / 2)
            # centres apart by at least 10 px and by 80 % of the two radii: the overlap stays small
            if all(np.hypot(c[0] - a, c[1] - b) >= max(FOMO_MIN_CENTRE_DIST, 0.4 * (length + s))
                   for a, b, s in centres):
                break
        else:
            continue
        ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x0 + pw, size), min(y0 + ph, size)
        a = alpha[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0]
        if (a > 0.5).sum() < FOMO_MIN_VISIBLE * full_area:
            continue
        p = patch[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0]
        region = img[iy0:iy1, ix0:ix1]
        img[iy0:iy1, ix0:ix1] = region * (1 - a[..., None]) + p * a[..., None]
        canvas = np.zeros((size, size), np.float32)
        canvas[iy0:iy1, ix0:ix1] = a
        layers.append((cls, canvas, full_area, (a > 0.5).sum() < full_area))
        centres.append((c[0], c[1], float(length)))
    objects: List[Tuple[int, List[float], bool]] = []
    cover = np.zeros((size, size), np.float32)  # how much the objects pasted later hide
    for cls, canvas, full_area, cut in reversed(layers):
        visible = canvas * (1 - cover) > 0.5
        cover = cover + canvas * (1 - cover)
        if visible.sum() < FOMO_MIN_VISIBLE * full_area:
            continue
        ys, xs = np.nonzero(visible)
        box = [float(xs.min()), float(ys.min()), float(xs.max() + 1 - xs.min()), float(ys.max() + 1 - ys.min())]
        objects.append((cls, box, cut))
    return np.rint(img).clip(0, 255).astype(np.uint8), objects[::-1]


def _roboflow_coco(images: List[Dict], annotations: List[Dict]) -> Dict:
    """COCO dict with the keys, key order and placeholder category 0 of a Roboflow export."""
    date = '2024-01-01T00:00:00+00:00'  # fixed: the files must not depend on when they were made
    return dict(
        info=dict(year='2024', version='2', description='sscma built-in coins and faces, generated from '
                  'scikit-image sample images (skimage.data.coins, lfw_subset)', contributor='sscma',
                  url='https://scikit-image.org/docs/stable/api/skimage.data.html', date_created=date),
        licenses=[dict(id=1, url='https://github.com/scikit-image/scikit-image/blob/main/skimage/data/README.txt',
                       name='scikit-image sample data licences')],
        categories=[dict(id=0, name='objects', supercategory='none')] +
        [dict(id=i + 1, name=n, supercategory='objects') for i, n in enumerate(FOMO_CLASSES)],
        images=[dict(im, license=1, date_captured=date) for im in images],
        annotations=annotations)


def write_fomo_split(folder: Path, split: str, count: int, seed: int, src: Optional[_Sources] = None,
                     size: int = FOMO_SIZE) -> Dict[str, int]:
    """Write ``count`` images and ``_annotations.coco.json`` of one split into ``folder``.

    Returns:
        dict: Statistics: ``images``, ``empty``, ``coin``, ``face``, ``cut`` (objects cut by the border).
    """
    src = src or _Sources()
    rng = np.random.default_rng([seed, 2024])
    folder.mkdir(parents=True, exist_ok=True)
    images: List[Dict] = []
    anns: List[Dict] = []
    stats = dict(images=count, empty=0, cut=0, **{c: 0 for c in FOMO_CLASSES})
    for i in range(count):
        img, objects = _compose(src, rng, split, size)
        name = f'{split}_{i:04d}.jpg'
        cv2.imwrite(str(folder / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
        images.append(dict(id=i, file_name=name, height=size, width=size))
        stats['empty'] += not objects
        for cls, box, cut in objects:
            stats[FOMO_CLASSES[cls]] += 1
            stats['cut'] += cut
            anns.append(dict(id=len(anns), image_id=i, category_id=cls + 1, bbox=box, area=box[2] * box[3],
                             segmentation=[], iscrowd=0))
    with open(folder / '_annotations.coco.json', 'w') as f:
        json.dump(_roboflow_coco(images, anns), f)
    return stats


def ensure_fomo_coco(root: Optional[PathLike] = None) -> Path:
    """Generate once the default FOMO / detection dataset in the Roboflow COCO export layout.

    ``train/`` (600 images), ``valid/`` (150) and ``test/`` (150), each with ``_annotations.coco.json`` and
    96x96 JPEGs beside it. Two classes of real image content, 12-28 px, pasted with their masks on random
    crops of real photos and textures: ``coin`` (cut out of ``skimage.data.coins`` with their round masks)
    and ``face`` (``skimage.data.lfw_subset``, soft elliptical mask, random tint). 0-5 objects per image,
    about 5 % of images empty, about 10 % of objects cut by the border (at least 40 % left visible). Boxes
    are the tight boxes of the visible masks. Each split draws from its own coins and faces. Categories
    are written as Roboflow does: id 0 is the placeholder supercategory, classes are 1 (coin) and 2 (face).

    Args:
        root: Where to write; default ``default_data_home() / 'fomo_objects_v2'``. Nothing is done when it
            exists.

    Returns:
        Path: The dataset root.
    """
    root = Path(root) if root else default_data_home() / FOMO_NAME

    def write(out: Path) -> None:
        src = _Sources()
        for split, count, seed in FOMO_SPLITS:
            write_fomo_split(out / split, split, count, seed, src)

    return _generate_once(root, write)
