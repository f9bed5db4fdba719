"""Write the benchmark suite: six small detection datasets of other kinds than the bundled set, offline.

    python tools/benchmarks/make_suite.py OUT [--only NAME ...]

None comes from ``sscma/datasets/builtin.py``. Each is cut from real pictures shipped in scikit-image /
scikit-learn, its train / valid / test images come from disjoint regions of the source pictures (an object
straddling a region boundary can be cut into two splits; no image content is shared otherwise), and it is written in the layout another tool would write (COCO 2017, Roboflow COCO, Ultralytics
YOLO, Pascal VOC). ``suite.json`` lists them. How each one's labels were made is in :data:`DATASETS` and in
``docs/benchmarks.md``. Deterministic: the same command writes the same files.
"""
import argparse
import json
import os
import os.path as osp
import warnings
from typing import Callable, Dict, List, Tuple

import cv2
import numpy as np

from sscma.utils import run_cli

Sample = Tuple[np.ndarray, List[Tuple[float, float, float, float, int]]]  # RGB image, [(x0, y0, x1, y1, cls)]
SPLITS = ('train', 'valid', 'test')


# ----------------------------------------------------------------------------------------------- labelled regions
def regions(mask: np.ndarray, min_area: int, max_area: int = 10 ** 9) -> List[Tuple[int, int, int, int, int]]:
    """Connected components of ``mask`` as ``(x0, y0, x1, y1, label id)`` boxes within the area limits."""
    from skimage.measure import label, regionprops
    labels = label(mask)
    out = []
    for r in regionprops(labels):
        if min_area <= r.area <= max_area:
            y0, x0, y1, x1 = r.bbox
            out.append((x0, y0, x1, y1, r.label))
    return out


def tile_boxes(objects, x, y, w, h, min_visible: float = 0.4) -> List[Tuple[float, float, float, float, int]]:
    """``objects`` ``(x0, y0, x1, y1, cls)`` in a source picture, clipped to the crop at ``(x, y, w, h)``;
    an object less than ``min_visible`` inside the crop is left out."""
    out = []
    for x0, y0, x1, y1, cls in objects:
        cx0, cy0, cx1, cy1 = max(x0, x), max(y0, y), min(x1, x + w), min(y1, y + h)
        if cx1 <= cx0 or cy1 <= cy0:
            continue
        if (cx1 - cx0) * (cy1 - cy0) < min_visible * (x1 - x0) * (y1 - y0):
            continue
        out.append((cx0 - x, cy0 - y, cx1 - x, cy1 - y, cls))
    return out


def crops(rng, picture: np.ndarray, objects, region: Tuple[int, int, int, int], count: int,
          size: Tuple[int, int], scale: Tuple[float, float] = (1.0, 1.0), empty_ok: float = 0.15) -> List[Sample]:
    """``count`` crops of ``picture`` inside ``region`` (x, y, w, h), each of ``size`` (w, h) times a random
    scale, resized to ``size``; boxes follow."""
    rx, ry, rw, rh = region
    out: List[Sample] = []
    tries = 0
    while len(out) < count and tries < count * 50:
        tries += 1
        s = rng.uniform(*scale)
        cw, ch = min(rw, int(round(size[0] * s))), min(rh, int(round(size[1] * s)))
        x, y = int(rng.integers(rx, rx + rw - cw + 1)), int(rng.integers(ry, ry + rh - ch + 1))
        boxes = tile_boxes(objects, x, y, cw, ch)
        if not boxes and rng.random() > empty_ok:
            continue
        image = cv2.resize(np.ascontiguousarray(picture[y:y + ch, x:x + cw]), size, interpolation=cv2.INTER_AREA)
        fx, fy = size[0] / cw, size[1] / ch
        boxes = [(a * fx, b * fy, c * fx, d * fy, k) for a, b, c, d, k in boxes]
        out.append((image, [b for b in boxes if b[2] - b[0] >= 2 and b[3] - b[1] >= 2]))  # a box of >= 2x2 px
    return out


def rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[..., None], 3, axis=2) if gray.ndim == 2 else gray


# ------------------------------------------------------------------------------------------------------ datasets
def coins_tiles(rng) -> Dict[str, List[Sample]]:
    """Real coins in the scikit-image ``coins`` photo, labelled by its watershed tutorial (Sobel elevation map,
    markers below 30 and above 150, holes filled); crops from the left 60 % (train), the next 20 % (valid) and
    the right 20 % (test), 128x128."""
    from scipy import ndimage
    from skimage import data, filters, segmentation
    coins = data.coins()
    markers = np.zeros_like(coins)
    markers[coins < 30], markers[coins > 150] = 1, 2
    mask = ndimage.binary_fill_holes(segmentation.watershed(filters.sobel(coins), markers) == 2)
    objects = [(x0, y0, x1, y1, 0) for x0, y0, x1, y1, _ in regions(mask, 150)]
    w = coins.shape[1]
    parts = {'train': (0, int(w * 0.6)), 'valid': (int(w * 0.6), int(w * 0.8)), 'test': (int(w * 0.8), w)}
    counts = {'train': 120, 'valid': 40, 'test': 40}
    out = {}
    for split, (a, b) in parts.items():
        side = min(b - a, 140)
        out[split] = crops(rng, rgb(coins), objects, (a, 0, b - a, coins.shape[0]), counts[split], (128, 128),
                           scale=(min(0.6, side / 128), side / 128))
    return out


def nuclei_ihc(rng) -> Dict[str, List[Sample]]:
    """Nuclei in scikit-image's ``immunohistochemistry`` slide: colour deconvolution (``rgb2hed``), nuclei are
    Otsu-thresholded haematoxylin blobs of 20-1500 px; a nucleus whose mean DAB stain is above Otsu's DAB
    threshold is ``dab_positive``, else ``nucleus``. 96x96 crops: top half train, bottom-left valid,
    bottom-right test."""
    from skimage import data, filters, morphology
    from skimage.color import rgb2hed
    ihc = data.immunohistochemistry()
    hed = rgb2hed(ihc)
    h, d = filters.gaussian(hed[..., 0], 1), filters.gaussian(hed[..., 2], 1)
    with warnings.catch_warnings():  # min_size is deprecated in scikit-image 0.26; max_size counts differently
        warnings.simplefilter('ignore', FutureWarning)
        mask = morphology.remove_small_objects(h > filters.threshold_otsu(h), 20)
    from skimage.measure import label
    labels = label(mask)
    d_thr = filters.threshold_otsu(d)
    objects = [(x0, y0, x1, y1, int(d[labels == k].mean() > d_thr)) for x0, y0, x1, y1, k in regions(mask, 20, 1500)]
    H, W = ihc.shape[:2]
    parts = {'train': (0, 0, W, H // 2), 'valid': (0, H // 2, W // 2, H // 2), 'test': (W // 2, H // 2, W // 2, H // 2)}
    counts = {'train': 240, 'valid': 60, 'test': 60}
    return {s: crops(rng, ihc, objects, r, counts[s], (96, 96), scale=(0.8, 1.25)) for s, r in parts.items()}


def hubble_sources(rng) -> Dict[str, List[Sample]]:
    """Sources in scikit-image's ``hubble_deep_field``: grey level smoothed (sigma 1) above its 96th percentile,
    components of at least 6 px; ``compact`` below 60 px, ``extended`` from 60 px. 160x120 crops (non-square),
    rows split 64 / 18 / 18 %."""
    from skimage import data, filters
    sky = data.hubble_deep_field()
    gray = filters.gaussian(cv2.cvtColor(sky, cv2.COLOR_RGB2GRAY).astype(float), 1)
    mask = gray > np.percentile(gray, 96)
    objects = [(x0, y0, x1, y1, int((x1 - x0) * (y1 - y0) >= 60)) for x0, y0, x1, y1, _ in regions(mask, 6)]
    H, W = sky.shape[:2]
    a, b = int(H * 0.64), int(H * 0.82)
    parts = {'train': (0, 0, W, a), 'valid': (0, a, W, b - a), 'test': (0, b, W, H - b)}
    counts = {'train': 300, 'valid': 60, 'test': 60}
    return {s: crops(rng, sky, objects, r, counts[s], (160, 120), scale=(0.9, 1.1)) for s, r in parts.items()}


def page_chars(rng) -> Dict[str, List[Sample]]:
    """Characters of scikit-image's ``page`` and ``text`` pictures: Sauvola-thresholded ink, components of
    8-400 px (one class, ``glyph``); 96x64 crops (wide), the left 60 % of each picture train, the rest valid
    (top half) and test (bottom half)."""
    from skimage import data, filters
    out: Dict[str, List[Sample]] = {s: [] for s in SPLITS}
    for picture, n in ((data.page(), 1), (data.text(), 1)):
        ink = picture < filters.threshold_sauvola(picture, window_size=25)
        objects = [(x0, y0, x1, y1, 0) for x0, y0, x1, y1, _ in regions(ink, 8, 400)]
        H, W = picture.shape
        cut = int(W * 0.6)
        parts = {'train': (0, 0, cut, H), 'valid': (cut, 0, W - cut, H // 2),
                 'test': (cut, H // 2, W - cut, H - H // 2)}
        counts = {'train': 110, 'valid': 25, 'test': 25}
        for s, r in parts.items():
            out[s] += crops(rng, rgb(picture), objects, r, counts[s] * n, (96, 64), scale=(0.7, 1.0))
    return out


def _textures():
    from skimage import data
    return [data.brick(), data.grass(), data.gravel()]


def pasted_objects(rng) -> Dict[str, List[Sample]]:
    """Three objects pasted at 30-160 px on tinted brick / grass / gravel textures, 320x240 files, 0-4 objects
    each: ``horse`` (scikit-image's silhouette, its mask, a random dark colour), ``shuttle`` (the model in
    ``astronaut``, a rectangle) and ``cat`` (``chelsea``, a rectangle); boxes are the pasted extents. Texture
    crops differ by split (left / middle / right thirds)."""
    from skimage import data
    horse = ~data.horse()
    shuttle = data.astronaut()[0:280, 350:470]
    cat = data.chelsea()[0:300, 60:420]
    textures = _textures()
    counts = {'train': 60, 'valid': 20, 'test': 20}
    out: Dict[str, List[Sample]] = {}
    for k, split in enumerate(SPLITS):
        samples = []
        for _ in range(counts[split]):
            tex = textures[int(rng.integers(len(textures)))]
            third = tex.shape[1] // 3
            x = k * third + int(rng.integers(0, third - 160))
            y = int(rng.integers(0, tex.shape[0] - 120))
            bg = cv2.resize(tex[y:y + 120, x:x + 160], (320, 240), interpolation=cv2.INTER_LINEAR).astype(float)
            img = np.clip(rgb(bg) * rng.uniform(0.5, 1.1, 3), 0, 255).astype(np.uint8)
            boxes = []
            for _ in range(int(rng.integers(0, 5))):
                cls = int(rng.integers(3))
                size = int(rng.integers(30, 161))
                if cls == 0:
                    h, w = size, int(size * horse.shape[1] / horse.shape[0])
                    piece = cv2.resize(horse.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
                else:
                    src = shuttle if cls == 1 else cat
                    h, w = size, max(8, int(size * src.shape[1] / src.shape[0]))
                    piece = cv2.resize(src, (w, h), interpolation=cv2.INTER_AREA)
                if w >= 320 or h >= 240:
                    continue
                x0, y0 = int(rng.integers(-w // 4, 320 - 3 * w // 4)), int(rng.integers(-h // 4, 240 - 3 * h // 4))
                xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + w, 320), min(y0 + h, 240)
                sub = (slice(ya - y0, yb - y0), slice(xa - x0, xb - x0))
                if cls == 0:
                    img[ya:yb, xa:xb][piece[sub]] = rng.integers(0, 90, 3)
                else:
                    img[ya:yb, xa:xb] = piece[sub]
                boxes.append((xa, ya, xb, yb, cls))
            samples.append((img, boxes))
        out[split] = samples
    return out


def digits_on_texture(rng) -> Dict[str, List[Sample]]:
    """scikit-learn's handwritten digits 0-7 (8 classes), upscaled 2-4x (16-32 px), pasted as ink on 96x96
    greyscale crops of ``camera`` and the textures, 0-6 per image; each split has its own digit images
    (first 60 % / next 20 % / last 20 % of the set) and its own picture regions (thirds)."""
    from skimage import data
    from sklearn.datasets import load_digits
    digits = load_digits()
    keep = digits.target < 8
    images, labels = digits.images[keep], digits.target[keep]
    n = len(images)
    index = {'train': range(0, int(n * 0.6)), 'valid': range(int(n * 0.6), int(n * 0.8)),
             'test': range(int(n * 0.8), n)}
    pictures = [data.camera()] + _textures()
    counts = {'train': 400, 'valid': 100, 'test': 100}
    out: Dict[str, List[Sample]] = {}
    for k, split in enumerate(SPLITS):
        samples = []
        for _ in range(counts[split]):
            pic = pictures[int(rng.integers(len(pictures)))]
            third = pic.shape[1] // 3
            x = k * third + int(rng.integers(0, third - 96))
            y = int(rng.integers(0, pic.shape[0] - 96))
            img = pic[y:y + 96, x:x + 96].astype(float) * rng.uniform(0.6, 1.0) + rng.uniform(0, 60)
            boxes = []
            for _ in range(int(rng.integers(0, 7))):
                i = int(rng.choice(index[split]))
                size = int(rng.integers(16, 33))
                glyph = cv2.resize(images[i] / 16.0, (size, size), interpolation=cv2.INTER_LINEAR)
                x0, y0 = int(rng.integers(0, 96 - size)), int(rng.integers(0, 96 - size))
                ink = rng.uniform(0, 40) if img.mean() > 100 else rng.uniform(200, 255)
                region = img[y0:y0 + size, x0:x0 + size]
                img[y0:y0 + size, x0:x0 + size] = region * (1 - glyph) + ink * glyph
                ys, xs = np.nonzero(glyph > 0.25)
                boxes.append((x0 + xs.min(), y0 + ys.min(), x0 + xs.max() + 1, y0 + ys.max() + 1, int(labels[i])))
            samples.append((rgb(np.clip(img, 0, 255).astype(np.uint8)), boxes))
        out[split] = samples
    return out


# ------------------------------------------------------------------------------------------------------- layouts
def _save(path: str, image: np.ndarray) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    cv2.imwrite(path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])


def _coco(samples: List[Sample], classes: List[str], file_names: List[str]) -> dict:
    images, anns = [], []
    for i, ((image, boxes), name) in enumerate(zip(samples, file_names)):
        images.append(dict(id=i, file_name=name, width=image.shape[1], height=image.shape[0]))
        for x0, y0, x1, y1, k in boxes:
            w, h = float(x1 - x0), float(y1 - y0)
            anns.append(dict(id=len(anns) + 1, image_id=i, category_id=k + 1, bbox=[float(x0), float(y0), w, h],
                             area=w * h, iscrowd=0, segmentation=[]))
    return dict(images=images, annotations=anns, categories=[dict(id=i + 1, name=c) for i, c in enumerate(classes)])


def write_coco2017(root: str, data: Dict[str, List[Sample]], classes: List[str]) -> None:
    """COCO 2017: ``annotations/instances_<split>.json`` + ``<split>/`` images (split names train/val/test)."""
    for split, samples in data.items():
        name = 'val' if split == 'valid' else split
        files = [f'{i:06d}.jpg' for i in range(len(samples))]
        for (image, _), f in zip(samples, files):
            _save(osp.join(root, name, f), image)
        os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
        with open(osp.join(root, 'annotations', f'instances_{name}.json'), 'w') as fh:
            json.dump(_coco(samples, classes, files), fh)


def write_roboflow(root: str, data: Dict[str, List[Sample]], classes: List[str]) -> None:
    """Roboflow COCO: ``<split>/_annotations.coco.json`` beside the images."""
    for split, samples in data.items():
        files = [f'{split}_{i:04d}_jpg.rf.jpg' for i in range(len(samples))]
        for (image, _), f in zip(samples, files):
            _save(osp.join(root, split, f), image)
        with open(osp.join(root, split, '_annotations.coco.json'), 'w') as fh:
            json.dump(_coco(samples, classes, files), fh)


def write_yolo(root: str, data: Dict[str, List[Sample]], classes: List[str]) -> None:
    """Ultralytics YOLO: ``data.yaml`` + ``images/<split>/`` + ``labels/<split>/`` (normalised cx cy w h)."""
    names = {'train': 'train', 'valid': 'val', 'test': 'test'}
    for split, samples in data.items():
        for i, (image, boxes) in enumerate(samples):
            stem = f'{names[split]}_{i:05d}'
            _save(osp.join(root, 'images', names[split], stem + '.jpg'), image)
            h, w = image.shape[:2]
            os.makedirs(osp.join(root, 'labels', names[split]), exist_ok=True)
            with open(osp.join(root, 'labels', names[split], stem + '.txt'), 'w') as fh:
                for x0, y0, x1, y1, k in boxes:
                    fh.write(f'{k} {(x0 + x1) / 2 / w:.6f} {(y0 + y1) / 2 / h:.6f} {(x1 - x0) / w:.6f} '
                             f'{(y1 - y0) / h:.6f}\n')
    with open(osp.join(root, 'data.yaml'), 'w') as fh:
        fh.write('train: images/train\nval: images/val\ntest: images/test\n'
                 f'nc: {len(classes)}\nnames: {json.dumps(classes)}\n')


def write_voc(root: str, data: Dict[str, List[Sample]], classes: List[str]) -> None:
    """Pascal VOC: ``Annotations/`` + ``JPEGImages/`` + ``ImageSets/Main/{train,val,test}.txt``."""
    names = {'train': 'train', 'valid': 'val', 'test': 'test'}
    os.makedirs(osp.join(root, 'ImageSets', 'Main'), exist_ok=True)
    os.makedirs(osp.join(root, 'Annotations'), exist_ok=True)
    for split, samples in data.items():
        stems = []
        for i, (image, boxes) in enumerate(samples):
            stem = f'{names[split]}_{i:05d}'
            stems.append(stem)
            _save(osp.join(root, 'JPEGImages', stem + '.jpg'), image)
            objects = ''.join(
                f'<object><name>{classes[k]}</name><difficult>0</difficult><bndbox><xmin>{x0 + 1:.1f}</xmin>'
                f'<ymin>{y0 + 1:.1f}</ymin><xmax>{x1:.1f}</xmax><ymax>{y1:.1f}</ymax></bndbox></object>'
                for x0, y0, x1, y1, k in boxes)
            h, w = image.shape[:2]
            with open(osp.join(root, 'Annotations', stem + '.xml'), 'w') as fh:
                fh.write(f'<annotation><filename>{stem}.jpg</filename><size><width>{w}</width><height>{h}</height>'
                         f'<depth>3</depth></size>{objects}</annotation>\n')
        with open(osp.join(root, 'ImageSets', 'Main', names[split] + '.txt'), 'w') as fh:
            fh.write('\n'.join(stems) + '\n')


#: name -> (builder, classes, writer, what the labels are)
DATASETS: Dict[str, Tuple[Callable, List[str], Callable]] = {
    'coins_tiles': (coins_tiles, ['coin'], write_coco2017),
    'nuclei_ihc': (nuclei_ihc, ['nucleus', 'dab_positive'], write_yolo),
    'hubble_sources': (hubble_sources, ['compact', 'extended'], write_voc),
    'page_chars': (page_chars, ['glyph'], write_roboflow),
    'pasted_objects': (pasted_objects, ['horse', 'shuttle', 'cat'], write_yolo),
    'digits_on_texture': (digits_on_texture, [str(d) for d in range(8)], write_voc),
}


def make_suite(out: str, only=None) -> List[dict]:
    entries = []
    for k, (name, (build, classes, write)) in enumerate(DATASETS.items()):
        if only and name not in only:
            continue
        data = build(np.random.default_rng(1000 + k))
        root = osp.join(out, name)
        write(root, data, classes)
        sizes = sorted({s[0].shape[:2] for split in data.values() for s in split})
        boxes = [b for split in data.values() for s in split for b in s[1]]
        sides = [max(b[2] - b[0], b[3] - b[1]) for b in boxes]
        entry = dict(name=name, data_root=root, layout=write.__name__[len('write_'):], classes=classes,
                     images={s: len(v) for s, v in data.items()}, image_hw=[list(map(int, s)) for s in sizes],
                     objects=len(boxes), empty_images=sum(not s[1] for v in data.values() for s in v),
                     object_px=[round(float(np.percentile(sides, q)), 1) for q in (5, 50, 95)] if sides else [],
                     labels=' '.join((build.__doc__ or '').split()))
        entries.append(entry)
        print(f'{name}: {entry["layout"]}, {entry["images"]}, {len(classes)} classes, {entry["objects"]} objects, '
              f'object size p5/p50/p95 {entry["object_px"]} px, {entry["empty_images"]} empty images')
    listed = osp.join(out, 'suite.json')
    kept = [e for e in (json.load(open(listed)) if only and osp.isfile(listed) else []) if e['name'] not in only]
    with open(listed, 'w') as fh:
        json.dump(sorted(kept + entries, key=lambda e: list(DATASETS).index(e['name'])), fh, indent=2)
    return entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out', help='folder for the datasets and suite.json')
    parser.add_argument('--only', nargs='+', choices=list(DATASETS), help='write only these datasets')
    args = parser.parse_args()
    make_suite(args.out, args.only)


if __name__ == '__main__':
    run_cli(main)
