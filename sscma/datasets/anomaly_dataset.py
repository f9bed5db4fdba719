"""Normal and anomalous images: the MVTec-AD layout, and plain folders of good and bad images.

Accepted layouts (split folders found under the usual aliases: ``train``/``training``, ``val``/``valid``/
``validation``, ``test``)::

    <data_root>/train/good/*.png               normal images only are fitted
    <data_root>/test/good/*.png                normal test images
    <data_root>/test/<defect>/*.png            anomalous test images, one folder per kind of defect
    <data_root>/ground_truth/<defect>/<name>_mask.png   (optional) the defect's pixels, any size of the image

Plain folders are the same without ``ground_truth``: ``<split>/good`` (or ``normal``, ``ok``) and any other
folder name for anomalous images (``bad``, ``defect`` ...). MVTec-AD has no validation split: without a
``val`` folder, ``val`` and ``test`` are the two halves of ``test`` (every other image of each folder in sorted
order: even positions are ``val``, odd ones ``test``), so they never share an image.
"""
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.dataset import BaseDataset
from mmengine.logging import MMLogger

from sscma.registry import DATASETS
from sscma.utils.errors import DatasetError

from .formats import _subdirs
from .image_folder import IMG_EXTENSIONS, _alias_group, layout_dirs, list_images, not_class_folders

NORMAL_NAMES = ('good', 'normal', 'ok')
ANOMALY_CLASSES = ('normal', 'anomalous')
MASK_DIRS = ('ground_truth', 'masks')


def find_split(data_root: str, split: str) -> Tuple[Optional[str], str]:
    """``(folder, half)``: the split's folder and ``''``, or the ``test`` folder and ``'even'``/``'odd'`` when a
    ``val`` split is asked of a dataset without one (and ``test`` is then the other half)."""
    def first(names: Sequence[str]) -> Optional[str]:
        return next((osp.join(data_root, n) for n in names if osp.isdir(osp.join(data_root, n))), None)

    folder = first(_alias_group(split))
    if split in _alias_group('test') and folder and first(_alias_group('val')) is None:
        return folder, 'odd'
    if folder is None and split in _alias_group('val'):
        test = first(_alias_group('test'))
        if test:
            return test, 'even'
    return folder, ''


@DATASETS.register_module()
class AnomalyDataset(BaseDataset):
    """Images labelled normal (0) or anomalous (1), with the defect's mask where the layout has one.

    Each item has ``img_path``, ``gt_label``, ``defect`` (its folder name) and ``mask_path`` (``''``: no mask;
    a normal image has none and means "no defective pixel"). The training split keeps normal images only.

    Args:
        data_root (str): Dataset root (module docstring). Empty: the generated set named by ``builtin``.
        split (str): ``train``, ``val`` or ``test``.
        builtin (str, optional): ``'coin'``, ``'surface'`` or ``'document'`` (:mod:`~sscma.datasets.anomaly_builtin`).
        normal_names (Sequence[str]): Folder names of normal images. Defaults to ``good``, ``normal``, ``ok``.
        model_classes (Sequence[str], optional): The model's class names; must be ``normal``, ``anomalous``.
        class_match (str): Accepted for the shared class-name check; the two names are fixed.
        **kwargs: mmengine ``BaseDataset`` arguments (``pipeline``, ``test_mode`` ...).
    """
    METAINFO = dict(classes=ANOMALY_CLASSES)

    def __init__(self, data_root: str = '', split: str = 'train', builtin: Optional[str] = None,
                 normal_names: Sequence[str] = NORMAL_NAMES, model_classes: Optional[Sequence[str]] = None,
                 class_match: str = 'name', **kwargs) -> None:
        if not data_root:
            if not builtin:
                raise DatasetError('data_root is empty: set data_root to a folder with train/good/*.png '
                                   '(e.g. --cfg-options data_root=/path/to/mvtec/bottle)')
            from .anomaly_builtin import ensure_anomaly_category
            data_root = str(ensure_anomaly_category(builtin))
        if not osp.isdir(data_root):
            raise DatasetError(f'data_root={data_root} does not exist or is not a folder')
        if model_classes is not None and tuple(model_classes) != ANOMALY_CLASSES:
            raise DatasetError(f'the model\'s classes are {list(model_classes)}: an anomaly dataset is scored as '
                               f'{list(ANOMALY_CLASSES)}; this model was not trained for anomaly detection')
        self.split = split
        self.normal_names = tuple(n.lower() for n in normal_names)
        self.split_dir, self.half = find_split(data_root, split)
        if self.split_dir is None:
            present = _subdirs(data_root)
            if layout_dirs(present):
                raise not_class_folders(data_root, present)
            raise DatasetError(f'no "{split}" folder in data_root={data_root} (looked for {list(_alias_group(split))}'
                               f'; found folders {present}; expected the MVTec-AD layout train/good, test/<defect>)')
        super().__init__(ann_file='', data_root=data_root, **kwargs)

    def _mask_path(self, defect: str, image: str) -> str:
        stem = osp.splitext(image)[0]
        for mask_dir in MASK_DIRS:
            folder = osp.join(self.data_root, mask_dir, defect)
            if not osp.isdir(folder):
                continue
            for name in (f'{stem}_mask.png', f'{stem}.png'):
                if osp.isfile(osp.join(folder, name)):
                    return osp.join(folder, name)
            raise DatasetError(f'{osp.join(self.split_dir, defect, image)} has no mask: expected {folder}/'
                               f'{stem}_mask.png (MVTec-AD naming) or {folder}/{stem}.png')
        return ''

    def load_data_list(self) -> List[Dict]:
        folders = _subdirs(self.split_dir)
        if layout_dirs(folders):
            raise not_class_folders(self.split_dir, folders)
        normal = [d for d in folders if d.lower() in self.normal_names]
        anomalous = [d for d in folders if d.lower() not in self.normal_names]
        training = self.split in _alias_group('train')
        logger = MMLogger.get_current_instance()
        data_list: List[Dict] = []
        for defect in normal + anomalous:
            files = list_images(osp.join(self.split_dir, defect))
            if self.half:
                files = files[self.half == 'odd'::2]
            label = int(defect not in normal)
            if training and label:
                logger.warning(f'{osp.join(self.split_dir, defect)}: {len(files)} anomalous training images are not '
                               'fitted (a model of normal images is fitted on normal images only)')
                continue
            for f in files:
                data_list.append(dict(img_path=osp.join(self.split_dir, defect, f), gt_label=label, defect=defect,
                                      mask_path=self._mask_path(defect, f) if label else ''))
        n_normal = sum(1 for d in data_list if not d['gt_label'])
        if training and not n_normal:
            raise DatasetError(f'no normal training images: expected {self.split_dir}/good/*.png (normal folders '
                               f'are named {"/".join(self.normal_names)}); found folders {folders}')
        if not data_list:
            raise DatasetError(f'no images ({", ".join(IMG_EXTENSIONS)}) under {self.split_dir}/<good|defect>/ '
                               f'(found folders {folders})')
        half = f' ({self.half} positions of each folder: no val folder, val and test share test/ in halves)' \
            if self.half else ''
        masks = sum(1 for d in data_list if d['mask_path'])
        logger.info(f'anomaly {self.split}: {self.split_dir}{half}: {n_normal} normal, '
                    f'{len(data_list) - n_normal} anomalous ({masks} with masks)')
        return data_list
