"""COCO-json detection data: Roboflow exports, plain COCO (2017) and CVAT "COCO 1.0" exports (read by
``DetectionDataset``, re-split by :mod:`.split`)."""
import math
import os
import os.path as osp
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from sscma.utils.errors import DatasetError

from .file_checks import check_unique_names, image_size, inside_root, read_json
from .image_folder import SPLIT_ALIASES, _alias_group

ROBOFLOW_ANN = '_annotations.coco.json'
KEYPOINTS_PREFIX = 'person_keypoints_'  # COCO 2017 and CVAT "COCO Keypoints 1.0" annotation files


def _subset_split(subset: str) -> Optional[str]:
    """The split a COCO subset name stands for (``train2017`` -> ``training``), None for another name
    (CVAT's ``default``: a dataset exported whole)."""
    name = subset.lower().rstrip('0123456789')
    return next((key for key, names in SPLIT_ALIASES.items() if name in names), None)


def coco_annotation_files(data_root: str) -> List[Tuple[str, str]]:
    """``(subset, annotation json)`` of the COCO detection files of ``data_root``, in this order:

    - Roboflow: ``<split>/_annotations.coco.json`` (subset: the folder name), or ``_annotations.coco.json`` in
      ``data_root`` itself (one Roboflow split folder, subset ``''``);
    - ``annotations/instances_<subset>.json`` (COCO 2017: ``instances_train2017``; CVAT "COCO 1.0":
      ``instances_default``), ``annotations/<split>.json`` and ``annotations/instances.json`` (subset ``''``);
    - ``annotations/person_keypoints_<subset>.json`` (COCO keypoints; CVAT "COCO Keypoints 1.0") for a subset
      without an ``instances_`` file. Other json files there (``captions_*``) are not box annotations.
    """
    found = []
    if osp.isfile(osp.join(data_root, ROBOFLOW_ANN)):
        found.append(('', osp.join(data_root, ROBOFLOW_ANN)))
    for names in SPLIT_ALIASES.values():
        found += [(n, osp.join(data_root, n, ROBOFLOW_ANN)) for n in names
                  if osp.isfile(osp.join(data_root, n, ROBOFLOW_ANN))]
    ann_dir = osp.join(data_root, 'annotations')
    if osp.isdir(ann_dir):
        for f in sorted(os.listdir(ann_dir)):
            stem = f[:-5]
            if not f.lower().endswith('.json') or not osp.isfile(osp.join(ann_dir, f)):
                continue
            if stem.lower() == 'instances':
                found.append(('', osp.join(ann_dir, f)))
            elif stem.lower().startswith('instances_'):
                found.append((stem[len('instances_'):], osp.join(ann_dir, f)))
            elif _subset_split(stem) is not None:
                found.append((stem, osp.join(ann_dir, f)))
        subsets = {s for s, _ in found}
        for f in sorted(os.listdir(ann_dir)):
            stem = f[:-5]
            if f.lower().endswith('.json') and stem.lower().startswith(KEYPOINTS_PREFIX) and \
                    stem[len(KEYPOINTS_PREFIX):] not in subsets:
                found.append((stem[len(KEYPOINTS_PREFIX):], osp.join(ann_dir, f)))
    return found


def coco_image_dir(data_root: str, subset: str, ann_file: str) -> Optional[str]:
    """The image folder of ``ann_file``: beside a Roboflow json; for ``annotations/*.json`` the first of
    ``<subset>/``, ``images/<subset>/``, ``<split alias>/`` and ``images/`` that exists (None if none does)."""
    if osp.basename(ann_file) == ROBOFLOW_ANN:
        return osp.dirname(ann_file)
    names = [subset] if subset else []
    names += [osp.join('images', subset)] if subset else []
    key = _subset_split(subset) if subset else None
    names += list(SPLIT_ALIASES[key]) if key else []
    names.append('images')
    return next((osp.join(data_root, n) for n in names if osp.isdir(osp.join(data_root, n))), None)


def _rel(data_root: str, path: str) -> str:
    return osp.relpath(path, data_root).replace(os.sep, '/')


def coco_layout(data_root: str) -> Optional[str]:
    """One line naming the COCO files found at ``data_root`` (a folder or a ``.json`` file); None if none."""
    if osp.isfile(data_root):
        return f'COCO json {data_root}' if data_root.lower().endswith('.json') else None
    if not osp.isdir(data_root):
        return None
    files = coco_annotation_files(data_root)
    if not files:
        return None
    roboflow = [_rel(data_root, osp.dirname(a)) for _, a in files if osp.basename(a) == ROBOFLOW_ANN]
    if roboflow == ['.']:
        return f'Roboflow COCO split folder: {ROBOFLOW_ANN} beside the images'
    if roboflow:
        return f'Roboflow COCO export: {", ".join(d + "/" for d in roboflow)} with {ROBOFLOW_ANN} beside the images'
    parts = []
    for subset, ann in files:
        img_dir = coco_image_dir(data_root, subset, ann)
        parts.append(f'{_rel(data_root, ann)} + ' + (f'{_rel(data_root, img_dir)}/' if img_dir else 'no image folder'))
    kind = 'CVAT COCO 1.0 export' if [s for s, _ in files] == ['default'] else 'COCO'
    if all(osp.basename(a).startswith(KEYPOINTS_PREFIX) for _, a in files):
        kind = 'CVAT COCO Keypoints 1.0 export' if [s for s, _ in files] == ['default'] else 'COCO keypoints'
    return f'{kind}: {", ".join(parts)}'


def coco_sources(data_root: str) -> List[Tuple[str, str]]:
    """``(annotation json, image folder)`` of every subset of the COCO dataset at ``data_root`` (see
    :func:`coco_annotation_files`), for the splitter, which merges them."""
    pairs = []
    for subset, ann in coco_annotation_files(data_root):
        img_dir = coco_image_dir(data_root, subset, ann)
        if img_dir is None:
            raise DatasetError(f'found {ann} but no image folder for it (looked for {subset or "images"}/, '
                               f'images/{subset}/, images/ under {data_root})')
        pairs.append((ann, img_dir))
    return pairs


def find_coco_split(data_root: str, split: str) -> Tuple[str, str]:
    """Return ``(annotation json, image folder)`` of ``split`` under ``data_root``.

    ``train``/``valid``/``val``/``test`` aliases are accepted (see :func:`coco_annotation_files` for the file
    names). ``split=''`` reads a dataset exported whole: a CVAT "COCO 1.0" export
    (``annotations/instances_default.json``) or one Roboflow split folder; naming a split of such a dataset is
    an error that says how to split it.
    """
    if not osp.isdir(data_root):
        raise DatasetError(f'data_root={data_root} does not exist or is not a folder')
    files = coco_annotation_files(data_root)
    whole = [(s, a) for s, a in files if _subset_split(s) is None]
    if not split:
        if len(files) == 1 or (len(whole) == 1 and len(files) == len(whole)):
            subset, ann = (whole or files)[0]
        elif files:
            raise DatasetError(f'split="" reads a dataset exported whole, but {data_root} has the COCO files '
                               f'{[_rel(data_root, a) for _, a in files]}; name a split (train, valid or test)')
        else:
            raise DatasetError(f'no COCO annotations under data_root={data_root}; looked for {ROBOFLOW_ANN}, '
                               '<split>/' + ROBOFLOW_ANN + ' and annotations/instances_<split>.json')
    else:
        key = _subset_split(split) or split
        matches = [(s, a) for s, a in files if (_subset_split(s) or s) == key]
        matches.sort(key=lambda sa: osp.basename(sa[1]) != ROBOFLOW_ANN)  # Roboflow's first, as before
        if not matches:
            if files and len(whole) == len(files):
                raise DatasetError(f'{data_root} is one set exported whole ({coco_layout(data_root)}) without '
                                   f'train/valid/test splits, so it has no "{split}" split; split it first: '
                                   f'python tools/dataset_split.py {data_root} OUT (or read it whole with split="")')
            raise DatasetError(f'no COCO annotations for split "{split}" under data_root={data_root}; looked for '
                               f'{list(_alias_group(split))} as <split>/{ROBOFLOW_ANN} or annotations/instances_'
                               f'<split>.json; found {[_rel(data_root, a) for _, a in files] or "none"}')
        subset, ann = matches[0]
    img_dir = coco_image_dir(data_root, subset, ann)
    if img_dir is None:
        raise DatasetError(f'found {ann} but no image folder for it (looked for {subset or "images"}/, '
                           f'images/{subset}/, images/ under {data_root})')
    return ann, img_dir


def load_coco_json(ann_file: str) -> Dict:
    """Read a COCO json, checking it is one (``images``, ``annotations`` and ``categories`` lists)."""
    data = read_json(ann_file)
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
    image size is read from the image. Annotations with ``keypoints`` keep them (``(K, 3)``, checked against
    their category's ``keypoints`` names) and their ``area``.
    """
    cat_names = {c['id']: c['name'] for c in data['categories']}
    kpt_counts = {c['id']: len(c['keypoints']) for c in data['categories'] if isinstance(c.get('keypoints'), list)}
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
            inst = dict(bbox=[x, y, x + w, y + h], label=cat_names[ann['category_id']],
                        ignore_flag=int(bool(ann.get('iscrowd', False))))
            if ann.get('keypoints') is not None:
                inst['keypoints'] = coco_keypoints(ann, kpt_counts.get(ann['category_id']), img['file_name'])
                if isinstance(ann.get('area'), (int, float)) and ann['area'] > 0:
                    inst['area'] = float(ann['area'])
            instances.append(inst)
        records.append(dict(img_path=path, img_id=img['id'], width=width, height=height, instances=instances))
    return records


def coco_keypoints(ann: Dict, count: Optional[int], file_name: str) -> np.ndarray:
    """An annotation's ``keypoints`` ``[x1, y1, v1, ...]`` as a ``(K, 3)`` array; ``count``: K of its category."""
    where = f'annotation id={_short(ann["id"])} ({file_name})'
    try:
        arr = np.asarray(ann['keypoints'], np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise DatasetError(f'{where}: keypoints must be numbers [x1, y1, v1, ...], got {_short(ann["keypoints"])}') \
            from None
    if count is None:
        raise DatasetError(f'{where}: has keypoints but its category {ann["category_id"]} has no "keypoints" names')
    if arr.size != 3 * count or not np.isfinite(arr).all():
        raise DatasetError(f'{where}: expected {count} keypoints as {3 * count} finite numbers [x, y, visibility, '
                           f'...] (the category names {count}), got {arr.size} values')
    kpts = arr.reshape(count, 3)
    bad = [v for v in kpts[:, 2] if v not in (0, 1, 2)]
    if bad:
        raise DatasetError(f'{where}: keypoint visibility must be 0, 1 or 2, got {bad[0]:g}')
    return kpts


def coco_keypoint_names(data: Dict, ann_file: str) -> Tuple[List[str], List[Tuple[int, int]]]:
    """``(keypoint names, skeleton as 0-based index pairs)`` of the categories of a COCO-keypoints json (all
    categories that have keypoints must name the same ones)."""
    cats = [c for c in sorted(data['categories'], key=lambda c: c['id']) if isinstance(c.get('keypoints'), list)]
    if not cats:
        raise DatasetError(f'{ann_file}: no category has "keypoints" names; not a COCO-keypoints file')
    names = [str(n) for n in cats[0]['keypoints']]
    other = next((c for c in cats if [str(n) for n in c['keypoints']] != names), None)
    if other is not None:
        raise DatasetError(f'{ann_file}: categories name different keypoints: {cats[0]["name"]} {names} vs '
                           f'{other["name"]} {other["keypoints"]}')
    check_unique_names(names, ann_file, 'keypoint names')
    skeleton = []
    for link in cats[0].get('skeleton') or []:
        if not (isinstance(link, (list, tuple)) and len(link) == 2 and all(
                isinstance(i, int) and 1 <= i <= len(names) for i in link)):
            raise DatasetError(f'{ann_file}: skeleton links must be pairs of 1-based keypoint numbers in '
                               f'1..{len(names)}, got {_short(link)}')
        skeleton.append((link[0] - 1, link[1] - 1))
    return names, skeleton


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
