"""COCO-json detection data in the Roboflow export layout or the plain COCO layout."""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

from mmdet.datasets import CocoDataset

from sscma.registry import DATASETS
from sscma.utils.errors import DatasetError

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
    for key in ('images', 'annotations', 'categories'):
        if not isinstance(data, dict) or not isinstance(data.get(key), list):
            raise DatasetError(f'{ann_file}: missing "{key}" list; not a COCO detection file')
    return data


def read_coco_classes(ann_file: str) -> List[str]:
    """Class names of a COCO json, ordered by category id, without Roboflow's placeholder category.

    Roboflow exports add a category (id 0, named after the project) that is the ``supercategory`` of all
    real classes and has no annotation of its own; it is not a class.
    """
    return coco_class_names(load_coco_json(ann_file), ann_file)


def _few(items: List[str], n: int = 3) -> str:
    return ', '.join(items[:n]) + (f' (+{len(items) - n} more)' if len(items) > n else '')


def check_coco_detection(data: Dict, ann_file: str, img_dir: str) -> None:
    """Raise :class:`DatasetError` for what mmdet would silently drop or fail on mid-training.

    Checked: ``images`` entries have ``id`` and ``file_name`` and exist in ``img_dir``; ``categories`` have
    ``id`` and ``name``; every annotation refers to a listed image and category and has a box
    ``[x, y, width, height]`` with width and height > 0.
    """
    for key, fields in (('images', ('id', 'file_name')), ('categories', ('id', 'name')), ('annotations', ('id', ))):
        for entry in data[key]:
            if not isinstance(entry, dict) or any(f not in entry for f in fields):
                raise DatasetError(f'{ann_file}: every entry of "{key}" needs {" and ".join(fields)}; got '
                                   f'{str(entry)[:120]}')
    images = {img['id']: img for img in data['images']}
    cat_ids = {c['id'] for c in data['categories']}
    no_image, no_category, bad_box = [], [], []
    for ann in data['annotations']:
        img = images.get(ann.get('image_id'))
        if img is None:
            no_image.append(f'id={ann["id"]} image_id={ann.get("image_id")!r}')
            continue
        where = f'id={ann["id"]} ({img["file_name"]})'
        if ann.get('category_id') not in cat_ids:
            no_category.append(f'{where} category_id={ann.get("category_id")!r}')
        box = ann.get('bbox')
        if not (isinstance(box, (list, tuple)) and len(box) == 4
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)
                and box[2] > 0 and box[3] > 0):
            bad_box.append(f'{where} bbox={box!r}')
    if no_image:
        raise DatasetError(f'{ann_file}: {len(no_image)} annotations refer to an image_id not in "images": '
                           f'{_few(no_image)}')
    if no_category:
        raise DatasetError(f'{ann_file}: {len(no_category)} annotations have a category_id not in "categories" '
                           f'(ids {sorted(cat_ids)}): {_few(no_category)}')
    if bad_box:
        raise DatasetError(f'{ann_file}: {len(bad_box)} annotations have a bbox that is not [x, y, width, height] '
                           f'with width > 0 and height > 0: {_few(bad_box)}')
    missing = [img['file_name'] for img in data['images'] if not osp.isfile(osp.join(img_dir, img['file_name']))]
    if missing:
        raise DatasetError(f'{ann_file}: {len(missing)} of {len(images)} listed images are not in {img_dir}: '
                           f'{_few(missing)}')


def coco_class_names(data: Dict, ann_file: str) -> List[str]:
    """:func:`read_coco_classes` for an already loaded json."""
    cats = sorted(data['categories'], key=lambda c: c['id'])
    used = {a.get('category_id') for a in data['annotations']}
    parents = {c.get('supercategory') for c in cats}
    names = [c['name'] for c in cats if not (c['name'] in parents and c['id'] not in used and len(cats) > 1)]
    if not names:
        raise DatasetError(f'{ann_file}: "categories" is empty')
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DatasetError(f'{ann_file}: category names must be unique, repeated: {dupes}')
    return names


@DATASETS.register_module()
class CocoDetectionDataset(CocoDataset):
    """mmdet's ``CocoDataset`` that finds its files and classes by itself.

    Args:
        data_root (str): Dataset root (Roboflow export or COCO layout). Empty means the built-in dataset
            named by ``builtin``.
        split (str): ``train``, ``valid``/``val`` or ``test``.
        classes (Sequence[str], optional): Class names to use (and their order); default: read from the
            annotation file, without Roboflow's placeholder category.
        num_classes (int, optional): Expected number of classes; a mismatch is an error.
        ann_file (str, optional): Explicit annotation file (relative to ``data_root``); then ``img_dir``
            (default: the json's folder) holds the images.
        builtin (str, optional): ``'fomo_objects'`` for the bundled coin/face set when ``data_root`` is empty.
        keep_empty (bool): Keep images without objects (they teach the background). Defaults to True.
        **kwargs: Passed to mmdet's ``CocoDataset`` (``pipeline``, ``test_mode``, ...).
    """

    def __init__(self, data_root: str = '', split: str = 'train', classes: Optional[Sequence[str]] = None,
                 num_classes: Optional[int] = None, ann_file: Optional[str] = None, img_dir: Optional[str] = None,
                 builtin: Optional[str] = None, keep_empty: bool = True, **kwargs) -> None:
        if not data_root:
            if builtin != 'fomo_objects':
                raise DatasetError('data_root is empty: set data_root to a Roboflow COCO export or a COCO '
                                   'folder (e.g. --cfg-options data_root=/path/to/export)')
            from .builtin import ensure_fomo_coco
            data_root = str(ensure_fomo_coco())
        if ann_file:
            ann_file = ann_file if osp.isabs(ann_file) else osp.join(data_root, ann_file)
            if not osp.isfile(ann_file):
                raise DatasetError(f'ann_file={ann_file} does not exist')
            img_dir = img_dir or osp.dirname(ann_file)
            img_dir = img_dir if osp.isabs(img_dir) else osp.join(data_root, img_dir)
        else:
            ann_file, img_dir = find_coco_split(data_root, split)
        data = load_coco_json(ann_file)
        check_coco_detection(data, ann_file, img_dir)
        found = coco_class_names(data, ann_file)
        classes = list(classes) if classes else found
        missing = sorted(set(classes) - set(found))
        if missing:
            raise DatasetError(f'classes {missing} are not categories of {ann_file} (it has {found})')
        if num_classes is not None and num_classes != len(classes):
            raise DatasetError(f'num_classes={num_classes} but {ann_file} defines {len(classes)} classes: {classes}')
        kwargs.setdefault('filter_cfg', dict(filter_empty_gt=not keep_empty, min_size=0))
        super().__init__(data_root=data_root, ann_file=ann_file, data_prefix=dict(img=img_dir),
                         metainfo=dict(classes=tuple(classes)), **kwargs)

    def load_data_list(self) -> List[Dict]:
        data_list = super().load_data_list()
        if not data_list:
            raise DatasetError(f'{self.ann_file}: no images listed')
        return data_list
