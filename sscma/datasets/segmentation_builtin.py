"""The default segmentation set, generated offline: coins and faces with their true outlines on pictures the
detection set does not use, at several sizes and aspect ratios, written in any of the three layouts.

Objects are the detection set's cut-outs (``coin`` from scikit-image's ``coins`` photo with its watershed mask,
``face`` from ``lfw_subset`` with its elliptical mask); backgrounds are crops of scikit-image's
``hubble_deep_field``, ``immunohistochemistry``, ``retina`` and ``clock`` pictures. Each object's outline is
kept as a polygon and every layout's mask is that polygon rasterised by
:func:`~sscma.datasets.segmentation_dataset.rasterise`, so the mask PNGs, the YOLO-seg and the COCO files of one
set (and CVAT's colour masks) describe the same pixels. The mask-PNG layout also marks a 1-pixel band along each
outline as ignore (255), as Pascal VOC does.
"""
import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .builtin import PathLike, _generate_once, _object, _Sources, default_data_home
from .seg_masks import IGNORE_INDEX, rasterise

SEG_CLASSES = ('background', 'coin', 'face')
SEG_SIZES = ((96, 96), (128, 96), (96, 128), (160, 120))  # (width, height)
SEG_SPLITS = (('train', 320, 11), ('val', 80, 12), ('test', 80, 13))
SEG_LAYOUTS = ('masks', 'yolo', 'coco', 'cvat')
CVAT_COLOURS = ((0, 0, 0), (250, 50, 83), (51, 221, 255))  # labelmap.txt colours of the classes
_NAME = 'seg_shapes_v1'


def _backgrounds() -> List[np.ndarray]:
    from skimage import data
    clock = cv2.cvtColor(data.clock(), cv2.COLOR_GRAY2RGB)
    return [data.hubble_deep_field(), data.immunohistochemistry(), data.retina(), clock]


def compose(src: _Sources, backgrounds: Sequence[np.ndarray], rng: np.random.Generator, split: str,
            size: Tuple[int, int]) -> Tuple[np.ndarray, List[Tuple[int, List[float]]]]:
    """An RGB uint8 image of ``size`` (width, height) and its objects' ``(class index, polygon)`` in drawing order."""
    w, h = size
    bg = backgrounds[int(rng.integers(len(backgrounds)))]
    crop = int(rng.integers(min(bg.shape[:2]) // 4, min(bg.shape[:2]) // 2))
    y, x = int(rng.integers(0, bg.shape[0] - crop)), int(rng.integers(0, bg.shape[1] - crop))
    img = cv2.resize(bg[y:y + crop, x:x + crop], (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
    img = img * rng.uniform(0.7, 1.1) + rng.uniform(-20, 20)
    polygons = []
    for _ in range(int(rng.integers(1, 4))):
        cls = int(rng.integers(2))
        pool = src.pools[{'val': 'valid'}.get(split, split)][cls]
        patch, alpha = _object(src, rng, cls, pool, int(rng.integers(min(w, h) // 5, min(w, h) // 2)))
        ph, pw = alpha.shape
        if ph >= h or pw >= w:
            continue
        oy, ox = int(rng.integers(0, h - ph)), int(rng.integers(0, w - pw))
        contours, _ = cv2.findContours((alpha > 0.5).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        if not contours:
            continue
        outline = max(contours, key=cv2.contourArea).reshape(-1, 2) + (ox, oy)
        if len(outline) < 3:
            continue
        region = img[oy:oy + ph, ox:ox + pw]
        img[oy:oy + ph, ox:ox + pw] = region * (1 - alpha[..., None]) + patch * alpha[..., None]
        polygons.append((cls + 1, outline.astype(np.float64).reshape(-1).tolist()))
    return img.clip(0, 255).astype(np.uint8), polygons


def _ignore_band(mask: np.ndarray) -> np.ndarray:
    edges = cv2.morphologyEx(mask, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    inner = cv2.erode((mask > 0).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    out = mask.copy()
    out[edges & ~inner & (mask > 0)] = IGNORE_INDEX  # the object's own outer pixel ring
    return out


def write_seg_set(root: Path, layouts: Sequence[str] = ('masks', ), splits=SEG_SPLITS, ignore_band: bool = True,
                  src: Optional[_Sources] = None) -> Dict[str, Path]:
    """Write the same images in each of ``layouts`` under ``root/<layout>``; returns the folders."""
    src = src or _Sources()
    backgrounds = _backgrounds()
    folders = {layout: Path(root) / layout for layout in layouts}
    coco: Dict[str, Dict] = {}
    for split, count, seed in splits:
        rng = np.random.default_rng(seed)
        for i in range(count):
            size = SEG_SIZES[int(rng.integers(len(SEG_SIZES)))]
            img, polygons = compose(src, backgrounds, rng, split, size)
            name = f'{split}_{i:04d}'
            bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
            for layout, folder in folders.items():
                if layout == 'masks':
                    out = folder / 'img_dir' / split
                    out.mkdir(parents=True, exist_ok=True)
                    cv2.imwrite(str(out / f'{name}.jpg'), bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
                    mask = rasterise(polygons, (size[1], size[0]))
                    ann = folder / 'ann_dir' / split
                    ann.mkdir(parents=True, exist_ok=True)
                    cv2.imwrite(str(ann / f'{name}.png'), _ignore_band(mask) if ignore_band else mask)
                elif layout == 'yolo':
                    out, lbl = folder / 'images' / split, folder / 'labels' / split
                    out.mkdir(parents=True, exist_ok=True)
                    lbl.mkdir(parents=True, exist_ok=True)
                    cv2.imwrite(str(out / f'{name}.jpg'), bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
                    lines = [' '.join([str(c - 1)] + [f'{v / (size[0] if k % 2 == 0 else size[1]):.6f}'
                                                      for k, v in enumerate(p)]) for c, p in polygons]
                    (lbl / f'{name}.txt').write_text('\n'.join(lines) + ('\n' if lines else ''))
                elif layout == 'cvat':  # CVAT "Segmentation mask 1.1": colour PNGs named by labelmap.txt
                    (folder / 'JPEGImages').mkdir(parents=True, exist_ok=True)
                    cv2.imwrite(str(folder / 'JPEGImages' / f'{name}.jpg'), bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
                    (folder / 'SegmentationClass').mkdir(exist_ok=True)
                    rgb = np.array(CVAT_COLOURS, np.uint8)[rasterise(polygons, (size[1], size[0]))]
                    cv2.imwrite(str(folder / 'SegmentationClass' / f'{name}.png'), rgb[..., ::-1])
                    sets = folder / 'ImageSets' / 'Segmentation'
                    sets.mkdir(parents=True, exist_ok=True)
                    with open(sets / f'{split}.txt', 'a') as f:
                        f.write(name + '\n')
                else:
                    out = folder / split
                    out.mkdir(parents=True, exist_ok=True)
                    cv2.imwrite(str(out / f'{name}.jpg'), bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
                    doc = coco.setdefault(split, dict(images=[], annotations=[], categories=[
                        dict(id=k, name=n) for k, n in enumerate(SEG_CLASSES[1:], 1)]))
                    doc['images'].append(dict(id=i, file_name=f'{name}.jpg', width=size[0], height=size[1]))
                    for c, p in polygons:
                        xs, ys = p[0::2], p[1::2]
                        doc['annotations'].append(dict(
                            id=len(doc['annotations']) + 1, image_id=i, category_id=c, segmentation=[p], iscrowd=0,
                            bbox=[min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)], area=0.0))
    if 'masks' in folders:
        (folders['masks'] / 'classes.txt').write_text('\n'.join(SEG_CLASSES) + '\n')
    if 'cvat' in folders:
        lines = [f'{n}:{",".join(map(str, c))}::' for n, c in zip(SEG_CLASSES, CVAT_COLOURS)]
        (folders['cvat'] / 'labelmap.txt').write_text('# label:color_rgb:parts:actions\n' + '\n'.join(lines) + '\n')
    if 'yolo' in folders:
        names = ', '.join(SEG_CLASSES[1:])
        (folders['yolo'] / 'data.yaml').write_text(f'names: [{names}]\nnc: {len(SEG_CLASSES) - 1}\n')
    for split, doc in coco.items():
        (folders['coco'] / split / '_annotations.coco.json').write_text(json.dumps(doc))
    return folders


def ensure_seg_masks(root: Optional[PathLike] = None) -> Path:
    """The generated set in the mask-PNG layout (written on first use); returns its folder."""
    root = Path(root) if root else default_data_home() / _NAME
    _generate_once(root, lambda tmp: write_seg_set(tmp, ('masks', )))
    return root / 'masks'
