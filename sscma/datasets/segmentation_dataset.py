"""Semantic segmentation: index-mask PNGs (mmsegmentation layout), YOLO-seg polygons, COCO polygons and RLE.

Every layout gives, per image, a mask of class indices at the image's own size (255 = ignore), with index 0 the
background. Polygons are rasterised by one function (:func:`rasterise`, OpenCV ``fillPoly`` in original-image
pixels), so the same objects give the same mask whichever layout carries them.

=================  ================================================================================================
layout             files
=================  ================================================================================================
mask PNGs          ``img_dir/<split>/*.jpg`` + ``ann_dir/<split>/<stem>.png`` (index or palette PNG, 255 = ignore);
                   class names in ``classes.txt`` (one per line, index order, background first)
YOLO-seg           ``images/<split>/*.jpg`` + ``labels/<split>/<stem>.txt`` (``cls x1 y1 x2 y2 ...`` in 0..1);
                   names in ``data.yaml``; background added as index 0
COCO               ``<split>/_annotations.coco.json`` (Roboflow) or ``annotations/instances_<split>.json`` +
                   ``<split>/`` images; ``segmentation`` polygons or RLE; background added as index 0
Pascal VOC / CVAT  ``JPEGImages/`` + ``SegmentationClass/<stem>.png`` + ``ImageSets/Segmentation/<split>.txt``;
                   palette / index PNGs, or CVAT's colour PNGs mapped by ``labelmap.txt`` (``name:r,g,b::``);
                   names from ``labelmap.txt`` or ``classes.txt``; ``split=''`` reads CVAT's single ``default``
=================  ================================================================================================
"""
import os
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import MMLogger

from sscma.registry import DATASETS
from sscma.utils.class_names import match_classes
from sscma.utils.errors import DatasetError

from .image_folder import _alias_group, list_images
from .seg_masks import IGNORE_INDEX, rasterise

BACKGROUND = 'background'


# ------------------------------------------------------------------------------------------------ masks
def read_mask(source: Dict[str, Any], lut: Optional[np.ndarray] = None) -> np.ndarray:
    """The index mask (original size) an item's ``seg_source`` describes, its indices mapped through ``lut``."""
    if 'png' in source:
        from PIL import Image
        try:
            with Image.open(source['png']) as im:
                if im.mode in ('RGB', 'RGBA') and source.get('colours'):
                    return _colour_mask(np.asarray(im.convert('RGB')), source, lut)
                if im.mode not in ('P', 'L', 'I;16', 'I'):
                    raise DatasetError(f'{source["png"]}: a {im.mode} image; expected an index mask (palette or '
                                       'grayscale PNG whose values are class indices, 255 = ignore)')
                mask = np.asarray(im).astype(np.int64)
        except OSError as e:
            raise DatasetError(f'{source["png"]}: cannot read this mask ({e})') from None
        if tuple(mask.shape) != tuple(source['hw']):
            raise DatasetError(f'{source["png"]}: mask is {mask.shape[1]}x{mask.shape[0]} but its image is '
                               f'{source["hw"][1]}x{source["hw"][0]} (width x height)')
        bad = np.setdiff1d(np.unique(mask), list(range(source['num_classes'])) + [IGNORE_INDEX])
        if bad.size:
            raise DatasetError(f'{source["png"]}: mask values {bad.tolist()[:5]} are not class indices (0..'
                               f'{source["num_classes"] - 1} from {source["classes_file"]}, 255 = ignore)')
        mask = mask.astype(np.uint8)
    elif 'rle' in source:
        from pycocotools import mask as mask_utils
        mask = np.zeros(source['hw'], np.uint8)
        for cls, rle in source['rle']:
            mask[mask_utils.decode(rle).astype(bool)] = cls
        if source.get('polygons'):
            poly = rasterise(source['polygons'], source['hw'])
            mask[poly > 0] = poly[poly > 0]
    else:
        mask = rasterise(source['polygons'], source['hw'])
    if lut is not None:
        mask = lut[mask]
    return mask


def _colour_mask(rgb: np.ndarray, source: Dict[str, Any], lut: Optional[np.ndarray]) -> np.ndarray:
    """A CVAT colour mask as class indices through the ``labelmap.txt`` colours (black is background)."""
    if tuple(rgb.shape[:2]) != tuple(source['hw']):
        raise DatasetError(f'{source["png"]}: mask is {rgb.shape[1]}x{rgb.shape[0]} but its image is '
                           f'{source["hw"][1]}x{source["hw"][0]} (width x height)')
    code = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    mask = np.full(code.shape, IGNORE_INDEX, np.uint8)
    for index, (r, g, b) in enumerate(source['colours']):
        mask[code == (r << 16 | g << 8 | b)] = index
    unknown = np.unique(code[mask == IGNORE_INDEX])
    if unknown.size:
        c = int(unknown[0])
        raise DatasetError(f'{source["png"]}: colour {(c >> 16, c >> 8 & 255, c & 255)} is not in '
                           f'{source["classes_file"]} ({unknown.size} unknown colours)')
    return lut[mask] if lut is not None else mask


def _lut(index: Dict[str, int], classes: Sequence[str]) -> np.ndarray:
    """uint8 table: dataset index -> model index (dataset classes the model does not know -> ignore)."""
    lut = np.full(256, IGNORE_INDEX, np.uint8)
    for i, name in enumerate(classes):
        if name in index:
            lut[i] = index[name]
    return lut


# ------------------------------------------------------------------------------------------------ layouts
def _image_size(path: str) -> Tuple[int, int]:
    from PIL import Image
    try:
        with Image.open(path) as im:
            return im.height, im.width
    except OSError as e:
        raise DatasetError(f'{path}: cannot read this image ({e})') from None


def _first_dir(root: str, names: Sequence[str]) -> Optional[str]:
    return next((osp.join(root, n) for n in names if osp.isdir(osp.join(root, n))), None)


def _split_dirs(root: str, split: str, images: str, annotations: str) -> Tuple[str, str]:
    """``root/<images>/<split>`` and ``root/<annotations>/<split>`` (split aliases tried), or a DatasetError."""
    found = [_first_dir(osp.join(root, d), _alias_group(split)) for d in (images, annotations)]
    if None in found:
        raise DatasetError(f'{root}: no {images}/{split} and {annotations}/{split} (looked for '
                           f'{list(_alias_group(split))})')
    return found[0], found[1]


def read_mask_pngs(root: str, split: str) -> Tuple[List[Dict], List[str], str]:
    classes_file = osp.join(root, 'classes.txt')
    if not osp.isfile(classes_file):
        raise DatasetError(f'{root}: mask PNGs need {classes_file} (class names one per line, in index order, '
                           'background first)')
    classes = [line.strip() for line in open(classes_file, encoding='utf-8') if line.strip()]
    img_dir, ann_dir = _split_dirs(root, split, 'img_dir', 'ann_dir')
    items = []
    for f in list_images(img_dir):
        png = osp.join(ann_dir, osp.splitext(f)[0] + '.png')
        if not osp.isfile(png):
            raise DatasetError(f'{osp.join(img_dir, f)} has no mask: expected {png}')
        path = osp.join(img_dir, f)
        items.append(dict(img_path=path, seg_source=dict(png=png, hw=_image_size(path), num_classes=len(classes),
                                                         classes_file=classes_file)))
    return items, classes, classes_file


def read_yolo_seg(root: str, split: str) -> Tuple[List[Dict], List[str], str]:
    import yaml
    data_yaml = next((osp.join(root, n) for n in ('data.yaml', 'dataset.yaml') if osp.isfile(osp.join(root, n))),
                     None)
    if data_yaml is None:
        raise DatasetError(f'{root}: YOLO-seg labels need data.yaml with the class names (names: [...])')
    with open(data_yaml, encoding='utf-8') as f:
        names = (yaml.safe_load(f) or {}).get('names')
    if isinstance(names, dict):
        names = [names[k] for k in sorted(names)]
    if not names:
        raise DatasetError(f'{data_yaml}: no "names" list')
    img_dir, lbl_dir = _split_dirs(root, split, 'images', 'labels')
    items = []
    for f in list_images(img_dir):
        path = osp.join(img_dir, f)
        h, w = _image_size(path)
        txt = osp.join(lbl_dir, osp.splitext(f)[0] + '.txt')
        polygons = []
        if osp.isfile(txt):
            for n, line in enumerate(open(txt, encoding='utf-8'), 1):
                values = line.split()
                if not values:
                    continue
                try:
                    cls, coords = int(values[0]), np.asarray(values[1:], dtype=np.float64)
                except ValueError:
                    raise DatasetError(f'{txt}:{n}: expected "class x1 y1 x2 y2 ..." numbers, got {line.strip()!r}') \
                        from None
                if not 0 <= cls < len(names) or coords.size < 6 or coords.size % 2:
                    raise DatasetError(f'{txt}:{n}: expected a class in 0..{len(names) - 1} and at least 3 x y pairs, '
                                       f'got {line.strip()[:60]!r}')
                polygons.append((cls + 1, (coords.reshape(-1, 2) * (w, h)).reshape(-1).tolist()))
        items.append(dict(img_path=path, seg_source=dict(polygons=polygons, hw=(h, w))))
    return items, [BACKGROUND] + [str(n) for n in names], data_yaml


def read_coco_seg(root: str, split: str) -> Tuple[List[Dict], List[str], str]:
    from .file_checks import read_json
    split_dir = _first_dir(root, _alias_group(split))
    candidates = ([osp.join(split_dir, '_annotations.coco.json')] if split_dir else []) + \
        [osp.join(root, 'annotations', f'instances_{n}.json') for n in _alias_group(split)]
    ann_file = next((c for c in candidates if osp.isfile(c)), None)
    if ann_file is None:
        raise DatasetError(f'{root}: no COCO annotations for "{split}" (looked for {candidates})')
    data = read_json(ann_file)
    cats = sorted(data.get('categories', []), key=lambda c: c['id'])
    cat_index = {c['id']: i + 1 for i, c in enumerate(cats)}
    per_image: Dict[Any, List] = {}
    for ann in data.get('annotations', []):
        per_image.setdefault(ann['image_id'], []).append(ann)
    img_root = split_dir if split_dir and osp.basename(ann_file) == '_annotations.coco.json' else \
        _first_dir(root, [*_alias_group(split), 'images'])
    items = []
    for img in data.get('images', []):
        path = osp.join(img_root or root, img['file_name'])
        h, w = int(img['height']), int(img['width'])
        polygons, rles = [], []
        for ann in per_image.get(img['id'], []):
            cls, seg = cat_index.get(ann['category_id']), ann.get('segmentation')
            if cls is None:
                raise DatasetError(f'{ann_file}: annotation {ann.get("id")} has category_id {ann["category_id"]}, '
                                   'not in "categories"')
            if isinstance(seg, list):
                polygons += [(cls, p) for p in seg]
            elif isinstance(seg, dict):
                from pycocotools import mask as mask_utils
                rles.append((cls, mask_utils.frPyObjects(seg, h, w) if isinstance(seg.get('counts'), list) else seg))
        source = dict(polygons=polygons, hw=(h, w))
        if rles:
            source['rle'] = rles
        items.append(dict(img_path=path, seg_source=source))
    return items, [BACKGROUND] + [str(c['name']) for c in cats], ann_file


def read_labelmap(path: str) -> Tuple[List[str], List[Tuple[int, int, int]]]:
    """CVAT / Pascal VOC ``labelmap.txt`` (``name:r,g,b:parts:actions`` lines, ``#`` comments): names and colours."""
    names, colours = [], []
    for n, line in enumerate(open(path, encoding='utf-8'), 1):
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        name, _, rest = line.partition(':')
        try:
            colour = tuple(int(v) for v in rest.split(':')[0].split(','))
        except ValueError:
            colour = ()
        if len(colour) != 3:
            raise DatasetError(f'{path}:{n}: expected "name:r,g,b::", got {line!r}')
        names.append(name)
        colours.append(colour)
    return names, colours


def read_voc_seg(root: str, split: str) -> Tuple[List[Dict], List[str], str]:
    labelmap, classes_txt = osp.join(root, 'labelmap.txt'), osp.join(root, 'classes.txt')
    colours = None
    if osp.isfile(labelmap):
        classes, colours = read_labelmap(labelmap)
        source_file = labelmap
    elif osp.isfile(classes_txt):
        classes = [line.strip() for line in open(classes_txt, encoding='utf-8') if line.strip()]
        source_file = classes_txt
    else:
        raise DatasetError(f'{root}: SegmentationClass masks need labelmap.txt (CVAT, Pascal VOC) or classes.txt '
                           '(names in index order, background first)')
    sets = osp.join(root, 'ImageSets', 'Segmentation')
    names = list(_alias_group(split)) if split else ['default', 'trainval']
    list_file = next((osp.join(sets, f'{n}.txt') for n in names if osp.isfile(osp.join(sets, f'{n}.txt'))), None)
    if list_file is None:
        present = sorted(os.listdir(sets)) if osp.isdir(sets) else []
        raise DatasetError(f'{root}: no ImageSets/Segmentation/{split or "default"}.txt (found {present}); a '
                           'single-set export (default.txt) is read whole with split=\'\'')
    img_dir, ann_dir = osp.join(root, 'JPEGImages'), osp.join(root, 'SegmentationClass')
    by_stem = {osp.splitext(f)[0]: f for f in list_images(img_dir)} if osp.isdir(img_dir) else {}
    items = []
    for n, stem in enumerate((line.strip() for line in open(list_file, encoding='utf-8')), 1):
        if not stem:
            continue
        if stem not in by_stem:
            raise DatasetError(f'{list_file}:{n}: {stem} has no image in {img_dir}')
        png = osp.join(ann_dir, stem + '.png')
        if not osp.isfile(png):
            raise DatasetError(f'{osp.join(img_dir, by_stem[stem])} has no mask: expected {png}')
        path = osp.join(img_dir, by_stem[stem])
        source = dict(png=png, hw=_image_size(path), num_classes=len(classes), classes_file=source_file)
        if colours:
            source['colours'] = colours
        items.append(dict(img_path=path, seg_source=source))
    return items, classes, source_file


# Entries of the format table (``sscma/datasets/formats.py``) -> (layout name, reader of a split).
SEG_READERS = {'masks': ('mask PNGs', read_mask_pngs), 'voc_seg': ('Pascal VOC / CVAT masks', read_voc_seg),
               'yolo': ('YOLO-seg', read_yolo_seg), 'coco': ('COCO', read_coco_seg)}


def detect_seg_layout(root: str):
    """``(layout name, reader)`` of the first format-table entry with a segmentation reader that recognises
    ``root``; an error naming what ``root`` holds when none does."""
    from .formats import DATASET_FORMATS, describe_contents
    if not osp.isdir(root):
        raise DatasetError(f'data_root={root} does not exist or is not a folder')
    entries = [f for f in DATASET_FORMATS if f.name in SEG_READERS]
    for fmt in entries:
        if fmt.recognise(root):
            return SEG_READERS[fmt.name]
    expected = '; '.join(f'{SEG_READERS[f.name][0]} ({f.layouts[0]})' for f in entries)
    raise DatasetError(f'no segmentation layout recognised under data_root={root}: expected {expected}; found '
                       f'{describe_contents(root)} (docs/segmentation.md)')


@DATASETS.register_module()
class SegmentationDataset(BaseDataset):
    """Images with a class index per pixel, from any layout of the module docstring.

    Items have ``img_path`` and ``seg_source`` (where the mask comes from, read by :func:`read_mask` at the
    image's size, class indices already in the model's order through ``seg_lut``).

    Args:
        data_root (str): Dataset root. Empty: the generated set (``builtin='shapes'``).
        split (str): ``train``, ``val`` or ``test`` (and their aliases).
        num_classes (int, optional): Expected number of classes, background included.
        builtin (str, optional): ``'shapes'``: :func:`~sscma.datasets.segmentation_builtin.ensure_seg_masks`.
        model_classes, class_match: The model's class names and how to match them (as every dataset).
        **kwargs: mmengine ``BaseDataset`` arguments.
    """

    def __init__(self, data_root: str = '', split: str = 'train', num_classes: Optional[int] = None,
                 builtin: Optional[str] = None, model_classes: Optional[Sequence[str]] = None,
                 class_match: str = 'name', **kwargs) -> None:
        if not data_root:
            if builtin != 'shapes':
                raise DatasetError('data_root is empty: set data_root to a segmentation dataset '
                                   '(e.g. --cfg-options data_root=/path/to/export)')
            from .segmentation_builtin import ensure_seg_masks
            data_root = str(ensure_seg_masks())
        if not osp.isdir(data_root):
            raise DatasetError(f'data_root={data_root} does not exist or is not a folder')
        self.layout, reader = detect_seg_layout(data_root)
        self._items, classes, self.source = reader(data_root, split)
        self.class_index = match_classes(model_classes, classes, self.source, class_match)
        self.class_index.check_num_classes(num_classes, classes, self.source)
        self.seg_lut = _lut(self.class_index.index, classes)
        self.split = split
        super().__init__(ann_file='', data_root=data_root, metainfo=self.class_index.metainfo(), **kwargs)

    def load_data_list(self) -> List[Dict]:
        if not self._items:
            raise DatasetError(f'{self.source}: no images in the "{self.split}" split')
        for item in self._items:
            item['seg_lut'] = self.seg_lut
        MMLogger.get_current_instance().info(
            f'segmentation {self.split}: {self.layout} layout, {len(self._items)} images, classes '
            f'{list(self.class_index.classes)} ({self.source})')
        return self._items
