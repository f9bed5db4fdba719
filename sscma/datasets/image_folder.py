"""Image classification from class folders (Sony AITRIOS / ImageNet layout)."""
import os
import os.path as osp
from collections import Counter
from typing import Dict, List, Optional, Sequence

from mmengine.logging import MMLogger
from mmpretrain.datasets import BaseDataset

from sscma.registry import DATASETS
from sscma.utils.class_names import match_classes
from sscma.utils.errors import DatasetError

from .file_checks import read_json

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')
# Names a split folder goes by in the layouts we accept, first the Sony AITRIOS one.
SPLIT_ALIASES = {
    'training': ('training', 'train'),
    'validation': ('validation', 'valid', 'val'),
    'test': ('test', 'testing'),
}
# Folders of detection layouts (compared lower-case): a folder holding one of them is never taken for class folders.
DETECTION_DIRS = ('images', 'labels', 'annotations', 'jpegimages')
SEGMENTATION_DIRS = ('img_dir', 'ann_dir', 'segmentationclass', 'segmentationobject')
ANNOTATION_EXTENSIONS = ('.txt', '.xml')  # YOLO / VOC labels: beside an image of the same name, not a class folder


def list_images(folder: str) -> List[str]:
    """The image file names (:data:`IMG_EXTENSIONS`, any case) directly in ``folder``, sorted."""
    return sorted(f for f in os.listdir(folder)
                  if f.lower().endswith(IMG_EXTENSIONS) and osp.isfile(osp.join(folder, f)))


def _alias_group(split: str) -> Sequence[str]:
    for names in SPLIT_ALIASES.values():
        if split in names:
            return names
    return (split, )


def find_split_dir(data_root: str, split: str) -> str:
    """Return ``data_root/<split>`` trying the usual aliases (``training``/``train``, ...)."""
    if not split:
        return data_root
    for name in _alias_group(split):
        path = osp.join(data_root, name)
        if osp.isdir(path):
            return path
    present = sorted(d for d in os.listdir(data_root) if osp.isdir(osp.join(data_root, d)))
    if layout_dirs(present):
        raise not_class_folders(data_root, present)
    raise DatasetError(f'no "{split}" folder in data_root={data_root} (looked for {list(_alias_group(split))}; '
                       f'found folders {present})')


def layout_dirs(names: Sequence[str]) -> List[str]:
    """The entries of ``names`` that are folders of a detection or segmentation layout (:data:`DETECTION_DIRS`,
    :data:`SEGMENTATION_DIRS`, any case)."""
    return [n for n in names if n.lower() in DETECTION_DIRS + SEGMENTATION_DIRS]


def not_class_folders(folder: str, subdirs: Sequence[str]) -> DatasetError:
    """The error for a folder whose subfolders (``images``, ``labels``, ``Annotations``...) are a detection layout."""
    if any(d.lower() in SEGMENTATION_DIRS for d in subdirs):
        return DatasetError(f'{folder} holds the folders {", ".join(d + "/" for d in subdirs)}: a segmentation '
                            f'dataset layout, not class folders (expected {folder}/<class>/*.jpg). Masks are read by '
                            f'SegmentationDataset (layouts: docs/segmentation.md) and re-split with python '
                            f'tools/dataset_split.py {folder} OUT')
    return DatasetError(f'{folder} holds the folders {", ".join(d + "/" for d in subdirs)}: a detection dataset '
                        f'layout, not class folders (expected {folder}/<class>/*.jpg). Box annotations are read by '
                        f'DetectionDataset (layouts: docs/datasets.md) and re-split with python tools/dataset_split.py '
                        f'{folder} OUT')


def _class_dirs(folder: str) -> List[str]:
    """The class folders under ``folder``; a detection layout (``images/``, ``labels/``, ...) is an error."""
    dirs = sorted(d for d in os.listdir(folder) if osp.isdir(osp.join(folder, d)) and not d.startswith('.'))
    if layout_dirs(dirs):
        raise not_class_folders(folder, dirs)
    return dirs


def check_class_folder(folder: str, files: Sequence[str]) -> None:
    """Refuse a class folder whose images have a ``.txt``/``.xml`` of the same name beside them (YOLO or VOC
    labels: a detection folder taken for a class)."""
    stems = {osp.splitext(f)[0] for f in files if f.lower().endswith(ANNOTATION_EXTENSIONS)}
    annotated = [f for f in files if f.lower().endswith(IMG_EXTENSIONS) and osp.splitext(f)[0] in stems]
    if annotated:
        stem = osp.splitext(annotated[0])[0]
        raise DatasetError(f'{folder}: {len(annotated)} images have a .txt/.xml annotation of the same name beside '
                           f'them (e.g. {annotated[0]} + {stem}.txt/.xml): a YOLO or Pascal VOC folder, not a class '
                           f'folder; re-split it as detection data with python tools/dataset_split.py '
                           f'{osp.dirname(folder)} OUT (layouts: docs/datasets.md)')


def read_labels_json(path: str) -> List[str]:
    """Read ``{"daisy": 0, ...}`` and return the class names ordered by id (ids must be 0..N-1)."""
    mapping = read_json(path)
    if not isinstance(mapping, dict) or not mapping:
        raise DatasetError(f'{path}: expected a non-empty object {{"class_name": id, ...}}')
    if any(not name.strip() for name in mapping):
        raise DatasetError(f'{path}: class names must be non-empty, got {[n for n in mapping if not n.strip()]}')
    bad = {k: v for k, v in mapping.items() if not isinstance(v, int) or isinstance(v, bool)}
    if bad:
        raise DatasetError(f'{path}: class ids must be integers, got {bad}')
    ids = sorted(mapping.values())
    if ids != list(range(len(mapping))):
        raise DatasetError(f'{path}: class ids must be 0..{len(mapping) - 1}, each once; got {ids}')
    return [name for name, _ in sorted(mapping.items(), key=lambda kv: kv[1])]


@DATASETS.register_module()
class ImageFolderDataset(BaseDataset):
    """Images in ``<data_root>/<split>/<class>/*.jpg``, class ids from ``labels.json`` when present.

    Without ``labels.json`` the classes are the sorted union of the class folders of every split found
    under ``data_root`` (so a split missing a class still gets the same ids). With ``split=''``,
    ``data_root`` itself holds the class folders (mmpretrain ``CustomDataset`` layout).

    Args:
        data_root (str): Dataset root. Empty means the built-in dataset named by ``builtin``.
        split (str): ``training``, ``validation`` or ``test`` (``train``/``val``/``valid`` also found).
        labels_file (str): Class-id map relative to ``data_root``. Defaults to ``labels.json``.
        num_classes (int, optional): Expected number of classes; a mismatch is an error.
        builtin (str, optional): ``'digits'`` to use the bundled handwritten-digit set when
            ``data_root`` is empty.
        model_classes (Sequence[str], optional): The class names of the model this data is scored with, in
            its output order: labels are numbered in that order, matched by name
            (:func:`~sscma.utils.class_names.match_classes`).
        class_match (str): ``'name'`` (same names, any order) or ``'shared'`` (score the classes both have).
        **kwargs: Passed to mmpretrain's ``BaseDataset`` (``pipeline``, ``test_mode``, ...).
    """

    def __init__(self, data_root: str = '', split: str = 'training', labels_file: str = 'labels.json',
                 num_classes: Optional[int] = None, builtin: Optional[str] = None,
                 model_classes: Optional[Sequence[str]] = None, class_match: str = 'name', **kwargs) -> None:
        if not data_root:
            if builtin != 'digits':
                raise DatasetError('data_root is empty: set data_root to a folder with training/<class>/*.jpg '
                                   '(e.g. --cfg-options data_root=/path/to/dataset)')
            from .builtin import ensure_digits_folder
            data_root = str(ensure_digits_folder())
        if not osp.isdir(data_root):
            raise DatasetError(f'data_root={data_root} does not exist or is not a folder')
        self.split_dir = find_split_dir(data_root, split)
        labels_path = osp.join(data_root, labels_file) if labels_file else ''
        if labels_path and osp.isfile(labels_path):
            classes = read_labels_json(labels_path)
            unknown = sorted(set(_class_dirs(self.split_dir)) - set(classes))
            if unknown:
                raise DatasetError(f'class folders {unknown} in {self.split_dir} are not in {labels_path} '
                                   f'(it lists {classes})')
            source = labels_path
        else:
            classes = sorted(set().union(*[set(_class_dirs(d)) for d in self._sibling_splits(data_root)]))
            source = f'the class folders of {data_root}'
        if not classes:
            raise DatasetError(f'no class folders in {self.split_dir} (expected {self.split_dir}/<class>/*.jpg)')
        self.class_index = match_classes(model_classes, classes, source, class_match)
        self.class_index.check_num_classes(num_classes, classes, source)
        super().__init__(ann_file='', data_root=data_root, metainfo=self.class_index.metainfo(), **kwargs)

    def _sibling_splits(self, data_root: str) -> List[str]:
        if osp.abspath(self.split_dir) == osp.abspath(data_root):
            return [data_root]
        dirs = [osp.join(data_root, n) for names in SPLIT_ALIASES.values() for n in names]
        return [d for d in dirs if osp.isdir(d)] or [self.split_dir]

    def load_data_list(self) -> List[Dict]:
        class_to_idx = self.class_index.index
        data_list = []
        empty = []
        ignored = []  # files of other types (notes.txt, Thumbs.db, a .zip): named so the user can see why
        for name in _class_dirs(self.split_dir):
            if name not in class_to_idx:  # a class the model does not know (class_match='shared')
                continue
            folder = osp.join(self.split_dir, name)
            entries = sorted(f for f in os.listdir(folder)
                             if osp.isfile(osp.join(folder, f)) and not f.startswith('.'))
            check_class_folder(folder, entries)
            files = [f for f in entries if f.lower().endswith(IMG_EXTENSIONS)]
            ignored += [osp.join(name, f) for f in entries if not f.lower().endswith(IMG_EXTENSIONS)]
            if not files:
                empty.append(name)
            data_list += [dict(img_path=osp.join(folder, f), gt_label=class_to_idx[name]) for f in files]
        others = f'{len(ignored)} files that are not images: {", ".join(ignored[:5])}{" ..." * (len(ignored) > 5)}'
        if not data_list:
            raise DatasetError(f'no images ({", ".join(IMG_EXTENSIONS)}) under {self.split_dir}/<class>/'
                               + (f'; found {others}' if ignored else ''))
        logger = MMLogger.get_current_instance()
        if empty:
            logger.warning(f'class folders without images in {self.split_dir}: {empty}')
        if ignored:
            logger.warning(f'{self.split_dir}: ignored {others}')
        per_class = Counter(d['gt_label'] for d in data_list)
        counts = ', '.join(f'{name} {per_class[i]}' for i, name in enumerate(self.class_index.classes))
        logger.info(f'class folders {self.split_dir}: {len(data_list)} images ({counts})')
        return data_list
