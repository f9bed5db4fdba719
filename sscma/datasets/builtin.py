"""Default datasets generated offline from real images that ship inside installed packages.

Nothing is downloaded: the digits come from scikit-learn, the coins, faces and backgrounds from
scikit-image and scikit-learn. Each dataset is generated once, deterministically, into a temporary folder
that is renamed into place when complete, so an interrupted generation never looks finished.
"""
import json
import os
import os.path as osp
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple, Union

import cv2
import numpy as np

PathLike = Union[str, Path]
DIGITS_NAME = 'digits_v1'
FOMO_NAME = 'fomo_objects_v1'
FOMO_SPLITS = (('train', 600, 1), ('valid', 150, 2), ('test', 150, 3))  # name, images, seed
FOMO_CLASSES = ('coin', 'face')


def default_data_home() -> Path:
    """``$SSCMA_DATA_HOME``, else ``$SSCMA_HOME/data``, else ``~/.cache/sscma/data``."""
    if os.environ.get('SSCMA_DATA_HOME'):
        return Path(os.environ['SSCMA_DATA_HOME'])
    home = os.environ.get('SSCMA_HOME') or osp.join(osp.expanduser('~'), '.cache', 'sscma')
    return Path(home) / 'data'


def _generate_once(root: Path, write: Callable[[Path], None]) -> Path:
    """Run ``write(tmp_dir)`` and rename the result to ``root``, unless ``root`` already exists."""
    if root.is_dir():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f'.{root.name}.', dir=root.parent))
    try:
        write(tmp)
        os.replace(tmp, root)
    except OSError:
        if not root.is_dir():  # a real failure, not another process finishing first
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def ensure_digits_folder(root: Optional[PathLike] = None) -> Path:
    """Write scikit-learn's 1,797 handwritten digits as a Sony-layout class-folder dataset.

    ``training/``, ``validation/``, ``test/`` (70/15/15 %, stratified, fixed seed) each hold ``0``..``9``
    folders of 32x32 RGB PNGs; ``labels.json`` maps ``"0"``..``"9"`` to ids 0..9.
    """
    root = Path(root) if root else default_data_home() / DIGITS_NAME

    def write(out: Path) -> None:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
        digits = load_digits()
        idx = np.arange(len(digits.target))
        train, rest = train_test_split(idx, test_size=0.3, stratify=digits.target, random_state=0)
        val, test = train_test_split(rest, test_size=0.5, stratify=digits.target[rest], random_state=0)
        for split, ids in (('training', train), ('validation', val), ('test', test)):
            for i in ids:
                img = (digits.images[i] * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
                img = cv2.resize(img, (32, 32), interpolation=cv2.INTER_LINEAR)
                folder = out / split / str(digits.target[i])
                folder.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(folder / f'{i:04d}.png'), cv2.cvtColor(img, cv2.COLOR_GRAY2BGR))
        with open(out / 'labels.json', 'w') as f:
            json.dump({str(c): c for c in range(10)}, f, indent=1)

    return _generate_once(root, write)


class _Sources:
    """Real image content for the FOMO set: backgrounds, coin cut-outs and face crops."""

    def __init__(self) -> None:
        from skimage import data, filters, measure, segmentation
        from scipy import ndimage
        from sklearn.datasets import load_sample_images

        gray = [data.brick(), data.grass(), data.gravel(), data.moon(), data.text(), data.page()]
        color = [data.coffee(), data.rocket()] + list(load_sample_images().images)
        self.backgrounds = [cv2.cvtColor(g, cv2.COLOR_GRAY2RGB) for g in gray] + color

        coins = data.coins()
        markers = np.zeros_like(coins, dtype=np.int32)
        markers[coins < 30] = 1
        markers[coins > 150] = 2
        mask = ndimage.binary_fill_holes(segmentation.watershed(filters.sobel(coins), markers) - 1)
        self.coins: List[Tuple[np.ndarray, np.ndarray]] = []
        for region in measure.regionprops(measure.label(mask)):
            if region.area < 800:
                continue
            y0, x0, y1, x1 = region.bbox
            self.coins.append((coins[y0:y1, x0:x1], region.image.astype(np.float32)))

        faces = data.lfw_subset()[:100]  # the first 100 images of lfw_subset are faces
        self.faces = [(f * 255).clip(0, 255).astype(np.uint8) for f in faces]
        yy, xx = np.mgrid[:25, :25]
        self.face_alpha = (((xx - 12) / 11.5)**2 + ((yy - 12.5) / 12.5)**2 <= 1).astype(np.float32)


def _background(src: _Sources, rng: np.random.Generator, size: int) -> np.ndarray:
    img = src.backgrounds[rng.integers(len(src.backgrounds))]
    h, w = img.shape[:2]
    crop = int(rng.integers(min(96, h, w), min(h, w, 320) + 1))
    y, x = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
    out = cv2.resize(img[y:y + crop, x:x + crop], (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    out = out * rng.uniform(0.6, 1.2) + rng.uniform(-30, 30) + rng.uniform(-15, 15, size=3)
    return out.clip(0, 255)


def _object(src: _Sources, rng: np.random.Generator, cls: int, size: int) -> Tuple[np.ndarray, np.ndarray]:
    """Return an RGB patch (float) and its alpha, longest side ``size`` px."""
    if cls == 0:
        gray, alpha = src.coins[rng.integers(len(src.coins))]
        tint = np.array([1.0, 0.85, 0.55]) if rng.random() < 0.5 else np.array([0.95, 0.95, 1.0])
    else:
        gray, alpha = src.faces[rng.integers(len(src.faces))], src.face_alpha
        tint = np.array([1.0, 0.8, 0.65]) * rng.uniform(0.8, 1.1)
    h, w = gray.shape
    scale = size / max(h, w)
    dsize = (max(2, round(w * scale)), max(2, round(h * scale)))
    patch = cv2.resize(gray, dsize, interpolation=cv2.INTER_AREA).astype(np.float32)
    alpha = cv2.resize(alpha, dsize, interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        patch, alpha = patch[:, ::-1], alpha[:, ::-1]
    rgb = patch[..., None] * tint[None, None] * rng.uniform(0.75, 1.25) + rng.uniform(-20, 20)
    return rgb.clip(0, 255), alpha.clip(0, 1)


def _compose(src: _Sources, rng: np.random.Generator, size: int) -> Tuple[np.ndarray, List[Tuple[int, list]]]:
    img = _background(src, rng, size)
    objects: List[Tuple[int, list]] = []
    centres: List[Tuple[float, float]] = []
    n = 0 if rng.random() < 0.05 else int(rng.integers(1, 6))
    for _ in range(n):
        cls = int(rng.integers(len(FOMO_CLASSES)))
        patch, alpha = _object(src, rng, cls, int(rng.integers(12, 29)))
        ph, pw = alpha.shape
        for _attempt in range(30):
            if rng.random() < 0.1:  # cut by the border
                x0 = int(rng.choice([rng.integers(-pw // 2, 1), rng.integers(size - pw, size - pw // 2 + 1)]))
                y0 = int(rng.integers(-ph // 3, size - ph + ph // 3 + 1))
            else:
                x0, y0 = int(rng.integers(0, size - pw + 1)), int(rng.integers(0, size - ph + 1))
            c = (x0 + pw / 2, y0 + ph / 2)
            if all((c[0] - a)**2 + (c[1] - b)**2 >= 100 for a, b in centres):
                break
        else:
            continue
        # visible part of the patch
        ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x0 + pw, size), min(y0 + ph, size)
        a = alpha[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0]
        if a.sum() < 0.4 * alpha.sum():
            continue
        p = patch[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0]
        img[iy0:iy1, ix0:ix1] = img[iy0:iy1, ix0:ix1] * (1 - a[..., None]) + p * a[..., None]
        ys, xs = np.nonzero(a > 0.5)
        if not len(xs):
            continue
        bx0, by0, bx1, by1 = ix0 + xs.min(), iy0 + ys.min(), ix0 + xs.max() + 1, iy0 + ys.max() + 1
        objects.append((cls, [float(bx0), float(by0), float(bx1 - bx0), float(by1 - by0)]))
        centres.append(c)
    return img.clip(0, 255).astype(np.uint8), objects


def ensure_fomo_coco(root: Optional[PathLike] = None, size: int = 96) -> Path:
    """Generate the default FOMO / detection dataset in the Roboflow COCO export layout.

    ``train/`` (600 images), ``valid/`` (150) and ``test/`` (150), each with ``_annotations.coco.json``
    and 96x96 JPEGs beside it. Classes ``coin`` (cut from ``skimage.data.coins``) and ``face``
    (``skimage.data.lfw_subset``) of 12-28 px are pasted with their masks on crops of real photos and
    textures: 0-5 objects per image, about 5 % of images empty, some objects cut by the border. Categories
    are written as Roboflow does: id 0 is the project's placeholder supercategory, classes start at 1.
    """
    root = Path(root) if root else default_data_home() / FOMO_NAME

    def write(out: Path) -> None:
        src = _Sources()
        categories = [dict(id=0, name='objects', supercategory='none')] + [
            dict(id=i + 1, name=n, supercategory='objects') for i, n in enumerate(FOMO_CLASSES)]
        for split, count, seed in FOMO_SPLITS:
            rng = np.random.default_rng(seed)
            folder = out / split
            folder.mkdir(parents=True)
            images: List[Dict] = []
            anns: List[Dict] = []
            for i in range(count):
                img, objects = _compose(src, rng, size)
                name = f'{split}_{i:04d}.jpg'
                cv2.imwrite(str(folder / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
                images.append(dict(id=i, file_name=name, width=size, height=size))
                for cls, box in objects:
                    anns.append(dict(id=len(anns), image_id=i, category_id=cls + 1, bbox=box,
                                     area=box[2] * box[3], iscrowd=0, segmentation=[]))
            coco = dict(info=dict(description='sscma built-in coins and faces', version='1'), licenses=[],
                        categories=categories, images=images, annotations=anns)
            with open(folder / '_annotations.coco.json', 'w') as f:
                json.dump(coco, f)

    return _generate_once(root, write)
