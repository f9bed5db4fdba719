"""One object's keypoints per image, from COCO-keypoints json (Roboflow layout) or labelme point files."""
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import MMLogger

from sscma.registry import DATASETS
from sscma.utils.class_names import match_classes
from sscma.utils.errors import DatasetError

from .coco_detection import find_coco_split
from .file_checks import read_json
from .image_folder import IMG_EXTENSIONS, _alias_group
from .meter_builtin import METER_KEYPOINTS


def _numbers(values, what: str, count: Optional[int] = None) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise DatasetError(f'{what}: expected numbers, got {values!r}') from None
    if count is not None and arr.size != count:
        raise DatasetError(f'{what}: expected {count} numbers, got {arr.size}')
    if not np.isfinite(arr).all():
        raise DatasetError(f'{what}: contains NaN or infinity')
    return arr


def read_coco_keypoints(ann_file: str, img_dir: str, keypoint_names: Optional[Sequence[str]] = None,
                        on_unannotated: str = 'skip') -> Tuple[List[Dict], List[str]]:
    """Read a COCO-keypoints json: one object (the first annotation) per image.

    Returns ``(data_list, keypoint_names)``. With ``keypoint_names`` given, the file's keypoints are
    reordered to that order (every name must be in the file's category). Images without an annotation
    are skipped with a warning (``on_unannotated='skip'``) or are an error (``'error'``).
    """
    data = read_json(ann_file)
    if not isinstance(data, dict):
        raise DatasetError(f'{ann_file}: expected a JSON object with "images", "annotations", "categories"')
    for key in ('images', 'annotations', 'categories'):
        if not isinstance(data.get(key), list):
            raise DatasetError(f'{ann_file}: missing "{key}" list; not a COCO-keypoints file')
    cats = [c for c in data['categories'] if isinstance(c, dict) and c.get('keypoints')]
    if not cats:
        raise DatasetError(f'{ann_file}: no category has a "keypoints" list of names; not a COCO-keypoints file '
                           '(categories=[{"id": 1, "name": "meter", "keypoints": ["center", ...]}])')
    used = {a.get('category_id') for a in data['annotations'] if isinstance(a, dict)}
    cat = next((c for c in cats if c.get('id') in used), cats[0])
    file_names = [str(n) for n in cat['keypoints']]
    names = list(keypoint_names) if keypoint_names else file_names
    missing = [n for n in names if n not in file_names]
    if missing:
        raise DatasetError(f'{ann_file}: keypoints {missing} are not in category "{cat.get("name")}" '
                           f'(it has {file_names})')
    order = [file_names.index(n) for n in names]
    k_file = len(file_names)

    by_image: Dict = {}
    for i, ann in enumerate(data['annotations']):
        if not isinstance(ann, dict) or 'image_id' not in ann:
            raise DatasetError(f'{ann_file}: annotations[{i}] has no "image_id"')
        if ann.get('category_id', cat.get('id')) != cat.get('id'):
            continue
        by_image.setdefault(ann['image_id'], []).append((i, ann))

    data_list: List[Dict] = []
    unannotated: List[str] = []
    several = 0
    for i, img in enumerate(data['images']):
        if not isinstance(img, dict) or 'id' not in img or 'file_name' not in img:
            raise DatasetError(f'{ann_file}: images[{i}] needs "id" and "file_name", got {img!r}')
        path = osp.join(img_dir, img['file_name'])
        anns = by_image.get(img['id'], [])
        if not anns:
            unannotated.append(path)
            continue
        several += len(anns) > 1
        idx, ann = min(anns, key=lambda t: (t[1].get('id', t[0]), t[0]))
        where = f'{ann_file}: annotation id={ann.get("id", idx)} (image {img["file_name"]})'
        if 'keypoints' not in ann:
            raise DatasetError(f'{where} has no "keypoints" ([x, y, v] * {k_file})')
        kpts = _numbers(ann['keypoints'], f'{where} "keypoints"', 3 * k_file).reshape(k_file, 3)[order]
        item = dict(img_path=path, img_id=img['id'], gt_keypoints=kpts[None, :, :2].astype(np.float32),
                    gt_keypoints_visible=(kpts[None, :, 2] > 0).astype(np.float32))
        if 'bbox' in ann:
            item['bbox'] = _numbers(ann['bbox'], f'{where} "bbox"', 4).astype(np.float32)
        data_list.append(item)
    _report(unannotated, several, ann_file, on_unannotated)
    return data_list, names


def _labelme_image(json_path: str, data: Dict) -> str:
    folder = osp.dirname(json_path)
    image_path = data.get('imagePath')
    if image_path:
        path = osp.normpath(osp.join(folder, str(image_path).replace('\\', '/')))
        if osp.isfile(path):
            return path
        same = osp.join(folder, osp.basename(str(image_path).replace('\\', '/')))
        if osp.isfile(same):
            return same
    stem = osp.splitext(json_path)[0]
    for ext in IMG_EXTENSIONS + tuple(e.upper() for e in IMG_EXTENSIONS):
        if osp.isfile(stem + ext):
            return stem + ext
    raise DatasetError(f'{json_path}: image not found (imagePath={image_path!r}, and no image named like the '
                       'json beside it)')


def read_labelme_folder(folder: str, keypoint_names: Sequence[str], on_unannotated: str = 'skip') -> List[Dict]:
    """Read every labelme ``*.json`` of ``folder``: ``point`` shapes whose labels are keypoint names.

    Keypoints without a point are marked invisible; other shape types (rectangles, polygons) are ignored.
    """
    files = sorted(f for f in os.listdir(folder) if f.lower().endswith('.json') and not f.startswith('.'))
    if not files:
        raise DatasetError(f'no labelme *.json files in {folder}')
    index = {n: i for i, n in enumerate(keypoint_names)}
    data_list: List[Dict] = []
    unannotated: List[str] = []
    for name in files:
        path = osp.join(folder, name)
        data = read_json(path)
        if not isinstance(data, dict) or not isinstance(data.get('shapes'), list):
            raise DatasetError(f'{path}: no "shapes" list; not a labelme file')
        kpts = np.zeros((len(keypoint_names), 2), np.float32)
        visible = np.zeros(len(keypoint_names), np.float32)
        for j, shape in enumerate(data['shapes']):
            if not isinstance(shape, dict):
                raise DatasetError(f'{path}: shapes[{j}] is not an object')
            if shape.get('shape_type', 'polygon') != 'point':
                continue
            label = shape.get('label')
            if label not in index:
                raise DatasetError(f'{path}: shapes[{j}] label {label!r} is not a keypoint name '
                                   f'(keypoint_names={list(keypoint_names)})')
            if visible[index[label]]:
                raise DatasetError(f'{path}: keypoint {label!r} is labelled twice')
            xy = _numbers(shape.get('points'), f'{path}: shapes[{j}] ({label}) "points"', 2)
            kpts[index[label]] = xy
            visible[index[label]] = 1
        img_path = _labelme_image(path, data)
        if not visible.any():
            unannotated.append(img_path)
            continue
        data_list.append(dict(img_path=img_path, img_id=osp.splitext(name)[0], gt_keypoints=kpts[None],
                              gt_keypoints_visible=visible[None]))
    _report(unannotated, 0, folder, on_unannotated)
    return data_list


def _report(unannotated: List[str], several: int, source: str, on_unannotated: str) -> None:
    logger = MMLogger.get_current_instance()
    if unannotated:
        shown = ', '.join(unannotated[:5]) + (' ...' if len(unannotated) > 5 else '')
        if on_unannotated == 'error':
            raise DatasetError(f'{source}: {len(unannotated)} image(s) without keypoints: {shown} '
                               "(on_unannotated='skip' skips them)")
        logger.warning(f'{source}: skipping {len(unannotated)} image(s) without keypoints: {shown}')
    if several:
        logger.warning(f'{source}: {several} image(s) have several objects; the first annotation of each is used')


def _find_labelme_dir(data_root: str, split: str) -> Optional[str]:
    candidates = [osp.join(data_root, n) for n in _alias_group(split)] if split else [data_root]
    for folder in candidates:
        if osp.isdir(folder) and any(f.lower().endswith('.json') for f in os.listdir(folder)):
            return folder
    return None


@DATASETS.register_module()
class MeterKeypointDataset(BaseDataset):
    """Whole-image keypoint regression data: one object (e.g. a meter) and its ``K`` keypoints per image.

    Layouts (``fmt='auto'`` tries them in this order):

    - COCO keypoints, Roboflow export: ``<split>/_annotations.coco.json`` with images beside it, or plain
      COCO ``annotations/instances_<split>.json`` (see :func:`find_coco_split`);
    - labelme: ``<split>/*.json`` (or ``data_root/*.json`` with ``split=''``), ``point`` shapes labelled with
      the keypoint names, images found by ``imagePath``.

    Each sample holds ``gt_keypoints`` ``(1, K, 2)`` in image pixels (corner convention: the top-left
    corner of the image is (0, 0)) and ``gt_keypoints_visible`` ``(1, K)``.

    Args:
        data_root (str): Dataset root. Empty means the built-in dataset named by ``builtin``.
        split (str): ``train``, ``valid``/``val`` or ``test`` (aliases accepted); ``''`` for labelme files
            directly in ``data_root``.
        keypoint_names (Sequence[str], optional): Names and order of the keypoints. COCO: default the
            file's order (given names reorder it); labelme: default the meter keypoints
            ``center, needle_tip, scale_start, scale_end``.
        num_keypoints (int, optional): Expected number of keypoints; a mismatch is an error.
        fmt (str): ``'auto'``, ``'coco'`` or ``'labelme'``.
        ann_file (str, optional): Explicit COCO json (relative to ``data_root``); images in ``img_dir``
            (default: the json's folder).
        builtin (str, optional): ``'meters'`` for the generated analog-meter set when ``data_root`` is empty.
        on_unannotated (str): ``'skip'`` (warn) or ``'error'`` for images without keypoints.
        model_classes (Sequence[str], optional): The model's class names, compared with ``('meter',)`` by
            :func:`~sscma.utils.class_names.match_classes`.
        class_match (str): ``'name'`` or ``'shared'``.
        **kwargs: Passed to mmengine's ``BaseDataset`` (``pipeline``, ``test_mode``, ...).
    """

    def __init__(self, data_root: str = '', split: str = 'train', keypoint_names: Optional[Sequence[str]] = None,
                 num_keypoints: Optional[int] = None, fmt: str = 'auto', ann_file: Optional[str] = None,
                 img_dir: Optional[str] = None, builtin: Optional[str] = None, on_unannotated: str = 'skip',
                 model_classes: Optional[Sequence[str]] = None, class_match: str = 'name', **kwargs) -> None:
        if fmt not in ('auto', 'coco', 'labelme'):
            raise DatasetError(f"MeterKeypointDataset: fmt={fmt!r}, expected 'auto', 'coco' or 'labelme'")
        if on_unannotated not in ('skip', 'error'):
            raise DatasetError(f"MeterKeypointDataset: on_unannotated={on_unannotated!r}, expected 'skip' or 'error'")
        if not data_root:
            if builtin != 'meters':
                raise DatasetError('data_root is empty: set data_root to a COCO-keypoints export or a folder of '
                                   'labelme files (e.g. --cfg-options data_root=/path/to/meters)')
            from .meter_builtin import ensure_meter_coco
            data_root = str(ensure_meter_coco())
        if not osp.isdir(data_root):
            raise DatasetError(f'data_root={data_root} does not exist or is not a folder')
        self.split = split
        self.on_unannotated = on_unannotated
        self.source_fmt, self.source = self._locate(data_root, split, fmt, ann_file, img_dir)
        if self.source_fmt == 'coco':
            self._coco_list, names = read_coco_keypoints(self.source[0], self.source[1], keypoint_names,
                                                         on_unannotated)
        else:
            names = list(keypoint_names) if keypoint_names else list(METER_KEYPOINTS)
            self._coco_list = None
        if len(set(names)) != len(names):
            raise DatasetError(f'keypoint_names must be unique, got {names}')
        if num_keypoints is not None and num_keypoints != len(names):
            src = self.source[0] if self.source_fmt == 'coco' else 'keypoint_names'
            raise DatasetError(f'num_keypoints={num_keypoints} but {src} defines {len(names)} keypoints: {names}')
        self.keypoint_names = tuple(names)
        match_classes(model_classes, ('meter', ), 'MeterKeypointDataset', class_match)
        metainfo = dict(classes=('meter', ), keypoint_names=self.keypoint_names, num_keypoints=len(names))
        super().__init__(ann_file='', data_root=data_root, metainfo=metainfo, **kwargs)

    @staticmethod
    def _locate(data_root: str, split: str, fmt: str, ann_file: Optional[str],
                img_dir: Optional[str]) -> Tuple[str, Tuple[str, str]]:
        if ann_file:
            ann_file = ann_file if osp.isabs(ann_file) else osp.join(data_root, ann_file)
            if osp.isdir(ann_file):
                return 'labelme', (ann_file, ann_file)
            if not osp.isfile(ann_file):
                raise DatasetError(f'ann_file={ann_file} does not exist')
            img_dir = img_dir or osp.dirname(ann_file)
            return 'coco', (ann_file, img_dir if osp.isabs(img_dir) else osp.join(data_root, img_dir))
        coco_error = None
        if fmt in ('auto', 'coco'):
            try:
                return 'coco', find_coco_split(data_root, split or 'train')
            except DatasetError as e:
                if fmt == 'coco':
                    raise
                coco_error = e
        folder = _find_labelme_dir(data_root, split)
        if folder is not None:
            return 'labelme', (folder, folder)
        where = f'{data_root}/{split}' if split else data_root
        raise DatasetError(f'no keypoint annotations for split "{split}" under data_root={data_root}: neither a '
                           f'COCO-keypoints json ({coco_error}) nor labelme *.json files in {where}')

    def load_data_list(self) -> List[Dict]:
        if self._coco_list is not None:
            data_list, self._coco_list = self._coco_list, None
        else:
            data_list = read_labelme_folder(self.source[0], self.keypoint_names, self.on_unannotated)
        if not data_list:
            raise DatasetError(f'{self.source[0]}: no image with keypoints')
        return data_list
