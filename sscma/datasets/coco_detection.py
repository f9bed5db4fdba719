"""COCO-json detection data in the Roboflow export layout or the plain COCO layout (read by ``DetectionDataset``)."""
import json
import math
import os
import os.path as osp
from typing import Any, Dict, List, Optional, Tuple

from sscma.utils.errors import DatasetError

from .file_checks import check_unique_names, image_size, inside_root
from .image_folder import _alias_group

ROBOFLOW_ANN = '_annotations.coco.json'


def find_coco_split(data_root: str, split: str) -> Tuple[str, str]:
    """Return ``(annotation json, image folder)`` of ``split`` under ``data_root``.

    Tried in order: Roboflow (``<split>/_annotations.coco.json``, images beside it) and plain COCO
    (``annotations/instances_<split>*.json`` or ``annotations/<split>.json``, images in ``<split>*/``,
    ``images/<split>/`` or ``images/``). ``train``/``valid``/``val``/``test`` aliases are accepted.
    """
    if not osp.isdir(data_root):
        raise DatasetError(f'data_root={data_root} does not exist or is not a folder')
    names = _alias_group(split)
    tried = []
    for name in names:
        ann = osp.join(data_root, name, ROBOFLOW_ANN)
        tried.append(ann)
        if osp.isfile(ann):
            return ann, osp.dirname(ann)
    ann_dir = osp.join(data_root, 'annotations')
    if osp.isdir(ann_dir):
        jsons = sorted(f for f in os.listdir(ann_dir) if f.endswith('.json'))
        for name in names:
            for f in jsons:
                stem = f[:-5]
                if stem in (name, f'instances_{name}') or (stem.startswith(f'instances_{name}') and
                                                            stem[len(f'instances_{name}'):].isdigit()):
                    suffix = stem[len('instances_'):] if stem.startswith('instances_') else stem
                    for img_dir in (osp.join(data_root, suffix), osp.join(data_root, 'images', suffix),
                                    osp.join(data_root, name), osp.join(data_root, 'images')):
                        if osp.isdir(img_dir):
                            return osp.join(ann_dir, f), img_dir
                    raise DatasetError(f'found {osp.join(ann_dir, f)} but no image folder for it (looked for '
                                       f'{suffix}/, images/{suffix}/, images/ under {data_root})')
        tried.append(f'{ann_dir}/instances_{split}*.json')
    raise DatasetError(f'no COCO annotations for split "{split}" under data_root={data_root}; looked for '
                       f'{tried} (Roboflow export: <split>/{ROBOFLOW_ANN}; COCO: annotations/instances_<split>.json)')


def load_coco_json(ann_file: str) -> Dict:
    """Read a COCO json, checking it is one (``images``, ``annotations`` and ``categories`` lists)."""
    try:
        with open(ann_file, encoding='utf-8') as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise DatasetError(f'{ann_file}: not valid JSON ({e})') from None
    except UnicodeDecodeError as e:
        raise DatasetError(f'{ann_file}: not UTF-8 text ({e.reason} at byte {e.start})') from None
    except RecursionError:
        raise DatasetError(f'{ann_file}: JSON nested too deeply') from None
    for key in ('images', 'annotations', 'categories'):
        if not isinstance(data, dict) or not isinstance(data.get(key), list):
            raise DatasetError(f'{ann_file}: missing "{key}" list; not a COCO detection file')
    return data


def read_coco_classes(ann_file: str) -> List[str]:
    """Class names of a COCO json, ordered by category id, without Roboflow's placeholder category.

    Roboflow exports add a category (id 0, named after the project) that is the ``supercategory`` of all
    real classes and has no annotation of its own; it is not a class.
    """
    data = load_coco_json(ann_file)
    _check_entries(data, ann_file)
    return coco_class_names(data, ann_file)


def _few(items: List[str], n: int = 3) -> str:
    return ', '.join(items[:n]) + (f' (+{len(items) - n} more)' if len(items) > n else '')


def _is_id(value: Any) -> bool:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _is_size(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _short(value: Any) -> str:
    return repr(value)[:60]


def _check_entries(data: Dict, ann_file: str) -> None:
    """Types of the ``images`` and ``categories`` entries (what every later step indexes or sorts by)."""
    for key, fields in (('images', ('id', 'file_name')), ('categories', ('id', 'name')), ('annotations', ('id', ))):
        for entry in data[key]:
            if not isinstance(entry, dict) or any(f not in entry for f in fields):
                raise DatasetError(f'{ann_file}: every entry of "{key}" needs {" and ".join(fields)}; got '
                                   f'{str(entry)[:120]}')
    for key in ('images', 'categories'):
        ids = [e['id'] for e in data[key]]
        bad = [i for i in ids if not _is_id(i)]
        if key == 'categories':
            bad = [i for i in ids if not isinstance(i, int) or isinstance(i, bool)]
        if bad:
            kind = 'integers' if key == 'categories' else 'integers or strings'
            raise DatasetError(f'{ann_file}: "{key}" ids must be {kind}, got {_short(bad[0])}')
        dupes = sorted({i for i in ids if ids.count(i) > 1}, key=str) if len(set(ids)) < len(ids) else []
        if dupes:
            raise DatasetError(f'{ann_file}: "{key}" ids must be unique, repeated: {dupes[:5]}')
    for img in data['images']:
        name = img['file_name']
        if not isinstance(name, str) or not name:
            raise DatasetError(f'{ann_file}: image id={img["id"]!r} file_name must be a file name, got {_short(name)}')
        for dim in ('width', 'height'):
            if dim in img and not _is_size(img[dim]):
                raise DatasetError(f'{ann_file}: image id={img["id"]!r} ({name}) {dim} must be a positive number, '
                                   f'got {_short(img[dim])}')
    for cat in data['categories']:
        if not isinstance(cat['name'], str) or not cat['name'].strip():
            raise DatasetError(f'{ann_file}: category id={cat["id"]} name must be non-empty text, got '
                               f'{_short(cat["name"])}')


def check_coco_detection(data: Dict, ann_file: str, img_dir: str, root: Optional[str] = None) -> None:
    """Raise :class:`DatasetError` for what mmdet would silently drop or fail on mid-training.

    Checked: ``images`` entries have an int/str ``id`` (unique) and a ``file_name`` that exists in ``img_dir``
    without leaving ``root`` (default ``img_dir``), and positive ``width``/``height`` when given;
    ``categories`` have an int ``id`` and a text ``name``; every annotation refers to a listed image and
    category and has a box ``[x, y, width, height]`` of finite numbers with width and height > 0.
    """
    _check_entries(data, ann_file)
    images = {img['id']: img for img in data['images']}
    cat_ids = {c['id'] for c in data['categories']}
    no_image, no_category, bad_box = [], [], []
    for ann in data['annotations']:
        image_id = ann.get('image_id')
        img = images.get(image_id) if _is_id(image_id) else None
        if img is None:
            no_image.append(f'id={_short(ann["id"])} image_id={_short(image_id)}')
            continue
        where = f'id={_short(ann["id"])} ({img["file_name"]})'
        category_id = ann.get('category_id')
        if not (_is_id(category_id) and category_id in cat_ids):
            no_category.append(f'{where} category_id={_short(category_id)}')
        box = ann.get('bbox')
        if not (isinstance(box, (list, tuple)) and len(box) == 4
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in box)
                and box[2] > 0 and box[3] > 0):
            bad_box.append(f'{where} bbox={_short(box)}')
    if no_image:
        raise DatasetError(f'{ann_file}: {len(no_image)} annotations refer to an image_id not in "images": '
                           f'{_few(no_image)}')
    if no_category:
        raise DatasetError(f'{ann_file}: {len(no_category)} annotations have a category_id not in "categories" '
                           f'(ids {sorted(cat_ids)}): {_few(no_category)}')
    if bad_box:
        raise DatasetError(f'{ann_file}: {len(bad_box)} annotations have a bbox that is not [x, y, width, height] '
                           f'with width > 0 and height > 0: {_few(bad_box)}')
    for img in data['images']:
        inside_root(root or img_dir, osp.join(img_dir, img['file_name']), f'{ann_file}: image id={img["id"]!r}')
    missing = [img['file_name'] for img in data['images'] if not osp.isfile(osp.join(img_dir, img['file_name']))]
    if missing:
        raise DatasetError(f'{ann_file}: {len(missing)} of {len(images)} listed images are not in {img_dir}: '
                           f'{_few(missing)}')


def coco_class_names(data: Dict, ann_file: str) -> List[str]:
    """:func:`read_coco_classes` for an already loaded (and type-checked) json."""
    cats = sorted(data['categories'], key=lambda c: c['id'])
    used = {a.get('category_id') for a in data['annotations'] if _is_id(a.get('category_id'))}
    parents = {c.get('supercategory') for c in cats if isinstance(c.get('supercategory'), str)}
    names = [c['name'] for c in cats if not (c['name'] in parents and c['id'] not in used and len(cats) > 1)]
    if not names:
        raise DatasetError(f'{ann_file}: "categories" is empty')
    check_unique_names(names, ann_file, 'category names')
    return names


def coco_records(data: Dict, img_dir: str) -> List[Dict]:
    """Image records of a checked COCO json as mmdet's ``CocoDataset`` parses them.

    Boxes become ``[x0, y0, x1, y1]``; like mmdet, annotations marked ``ignore``, boxes under 1 px and boxes
    without overlap with the image are left out, and ``iscrowd`` ones get ``ignore_flag=1``. A missing
    image size is read from the image.
    """
    cat_names = {c['id']: c['name'] for c in data['categories']}
    by_image: Dict = {}
    for ann in data['annotations']:
        by_image.setdefault(ann['image_id'], []).append(ann)
    records = []
    for img in data['images']:
        path = osp.join(img_dir, img['file_name'])
        if 'width' in img and 'height' in img:
            width, height = img['width'], img['height']
        else:
            width, height = image_size(path)
        instances = []
        for ann in by_image.get(img['id'], []):
            x, y, w, h = ann['bbox']
            inter_w = max(0, min(x + w, width) - max(x, 0))
            inter_h = max(0, min(y + h, height) - max(y, 0))
            if ann.get('ignore', False) or inter_w * inter_h == 0 or w < 1 or h < 1:
                continue
            instances.append(dict(bbox=[x, y, x + w, y + h], label=cat_names[ann['category_id']],
                                  ignore_flag=int(bool(ann.get('iscrowd', False)))))
        records.append(dict(img_path=path, img_id=img['id'], width=width, height=height, instances=instances))
    return records


def load_coco_split(data_root: str, split: str, ann_file: Optional[str] = None,
                    img_dir: Optional[str] = None) -> Tuple[List[str], List[Dict], str]:
    """Return ``(class names, records, annotation file)`` of a COCO split (or of an explicit ``ann_file``)."""
    if ann_file:
        ann_file = ann_file if osp.isabs(ann_file) else osp.join(data_root, ann_file)
        if not osp.isfile(ann_file):
            raise DatasetError(f'ann_file={ann_file} does not exist')
        img_dir = img_dir or osp.dirname(ann_file)
        img_dir = img_dir if osp.isabs(img_dir) else osp.join(data_root, img_dir)
    else:
        ann_file, img_dir = find_coco_split(data_root, split)
    data = load_coco_json(ann_file)
    root = data_root if osp.realpath(img_dir).startswith(osp.realpath(data_root)) else img_dir
    check_coco_detection(data, ann_file, img_dir, root)
    names = coco_class_names(data, ann_file)
    return names, coco_records(data, img_dir), ann_file
