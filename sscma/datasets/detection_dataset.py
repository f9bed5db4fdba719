"""Box detection data in the format the user has: COCO json, YOLO txt or Pascal VOC xml, found by itself."""
import os.path as osp
from collections import Counter
from typing import Dict, List, Optional, Sequence, Tuple

from mmdet.datasets import BaseDetDataset
from mmengine.logging import MMLogger

from sscma.registry import DATASETS
from sscma.utils.class_names import match_classes
from sscma.utils.errors import ConfigError, DatasetError

from .coco_detection import coco_layout, load_coco_split
from .formats import DATASET_FORMATS, detect_format, format_named

FORMATS = ('auto', *(f.name for f in DATASET_FORMATS if f.task == 'detection'))


def _transform_name(transform) -> str:
    name = transform.get('type', '') if isinstance(transform, dict) else type(transform).__name__
    name = name if isinstance(name, str) else getattr(name, '__name__', str(name))
    return name.rsplit('.', 1)[-1]


def check_test_pipeline(pipeline: Sequence) -> None:
    """Refuse a test pipeline that loads boxes before resizing.

    mmdet's test pipelines load annotations after ``Resize`` so that ground truth stays in original-image
    pixels, where metrics compare it with predictions mapped back through ``scale_factor``.
    """
    names = [_transform_name(t) for t in pipeline or []]
    load = next((k for k, n in enumerate(names) if n.startswith('Load') and n.endswith('Annotations')), None)
    resize = next((k for k, n in enumerate(names) if n.endswith('Resize')), None)
    if load is not None and resize is not None and load < resize:
        raise ConfigError(f'test pipeline: {names[load]} (step {load + 1}) comes before {names[resize]} (step '
                          f'{resize + 1}); load annotations after the resize so ground truth stays in '
                          'original-image pixels (mmdet convention, what the metrics expect)')


def is_coco_root(data_root: str) -> bool:
    """Whether ``data_root`` holds COCO json (Roboflow, COCO 2017 or CVAT "COCO 1.0" layout)."""
    return coco_layout(data_root) is not None


def load_detection_split(data_root: str, split: str, fmt: str = 'auto', ann_file: Optional[str] = None,
                         img_dir: Optional[str] = None) -> Tuple[str, List[str], List[Dict], str]:
    """Return ``(format, class names, records, source)`` of ``split``; a record has ``img_path``, ``width``,
    ``height`` and ``instances`` (``bbox`` [x0, y0, x1, y1] in original pixels, ``label`` name, ``ignore_flag``).

    The format is the first detection entry of the format table (:mod:`.formats`) that recognises
    ``data_root``, unless ``fmt`` names one; an explicit ``ann_file`` is COCO.
    """
    if fmt not in FORMATS:
        raise ConfigError(f'format={fmt!r}: expected one of {FORMATS}')
    if ann_file:
        names, records, source = load_coco_split(data_root, split, ann_file, img_dir)
        return 'coco', names, records, source
    if not osp.isdir(data_root):
        raise DatasetError(f'data_root={data_root} does not exist or is not a folder')
    entry = format_named(detect_format(data_root) if fmt == 'auto' else fmt)
    names, records, source = entry.read(data_root, split)
    return entry.name, names, records, source


@DATASETS.register_module()
class DetectionDataset(BaseDetDataset):
    """Detection boxes from COCO json, YOLO txt or Pascal VOC xml, with the format found under ``data_root``.

    Every format gives mmdet's ``CocoDataset`` data list: ``img_path``, ``img_id``, ``width``, ``height`` and
    ``instances`` with ``bbox`` ([x0, y0, x1, y1] in original-image pixels), ``bbox_label`` and
    ``ignore_flag`` (COCO ``iscrowd``, VOC ``difficult``), so mmdet's transforms and ``CocoMetric`` work
    unchanged. Layouts: ``docs/datasets.md``.

    Args:
        data_root (str): Dataset root. Empty means the built-in dataset named by ``builtin``.
        split (str): ``train``, ``valid``/``val`` or ``test`` (``''``: a single-set export read whole: CVAT, labelImg).
        classes (Sequence[str], optional): Class names to use (and their order); default: all classes of the
            dataset (COCO ``categories`` without Roboflow's placeholder, YOLO ``names``, VOC ``labels.txt`` or
            the sorted object names). Objects of other classes are left out.
        num_classes (int, optional): Expected number of classes; a mismatch is an error.
        format (str): ``'auto'`` (default), ``'coco'``, ``'yolo'`` or ``'voc'``.
        ann_file (str, optional): Explicit COCO json (relative to ``data_root``); then ``img_dir`` (default:
            the json's folder) holds the images.
        img_dir (str, optional): Image folder of ``ann_file``.
        builtin (str, optional): ``'fomo_objects'`` for the bundled coin/face set when ``data_root`` is empty.
        keep_empty (bool): Keep images without objects (they teach the background). Defaults to True.
        model_classes (Sequence[str], optional): The class names of the model this data is scored with (or
            trained on, when resuming), in its output order: labels are numbered in that order, matched by
            name (:func:`~sscma.utils.class_names.match_classes`). Set by ``tools/test.py``, the export
            evaluation and ``--load-from`` from the model's own names.
        class_match (str): ``'name'`` (the names must be the same, in any order) or ``'shared'`` (score the
            classes both have). Defaults to ``'name'``.
        **kwargs: Passed to mmdet's ``BaseDetDataset`` (``pipeline``, ``test_mode``, ``filter_cfg``, ...).
    """

    def __init__(self, data_root: str = '', split: str = 'train', classes: Optional[Sequence[str]] = None,
                 num_classes: Optional[int] = None, format: str = 'auto', ann_file: Optional[str] = None,
                 img_dir: Optional[str] = None, builtin: Optional[str] = None, keep_empty: bool = True,
                 model_classes: Optional[Sequence[str]] = None, class_match: str = 'name', **kwargs) -> None:
        if not data_root:
            if builtin != 'fomo_objects':
                raise DatasetError('data_root is empty: set data_root to a COCO, YOLO or Pascal VOC dataset '
                                   '(e.g. --cfg-options data_root=/path/to/export)')
            from .builtin import ensure_fomo_coco
            data_root = str(ensure_fomo_coco())
        test_mode = kwargs.get('test_mode', False)
        if test_mode:
            check_test_pipeline(kwargs.get('pipeline', []))
        fmt, found, records, source = load_detection_split(data_root, split, format, ann_file, img_dir)
        classes = list(classes) if classes else found
        missing = sorted(set(classes) - set(found))
        if missing:
            raise DatasetError(f'classes {missing} are not classes of {source} (it has {found})')
        match = match_classes(model_classes, classes, source, class_match)
        match.check_num_classes(num_classes, classes, source)
        data_list = []
        for k, rec in enumerate(records):
            instances = [dict(bbox=[float(v) for v in i['bbox']], bbox_label=match.index[i['label']],
                              ignore_flag=int(i['ignore_flag'])) for i in rec['instances'] if i['label'] in match.index]
            data_list.append(dict(img_path=rec['img_path'], img_id=rec.get('img_id', k), width=rec['width'],
                                  height=rec['height'], instances=instances))
        if not data_list:
            raise DatasetError(f'{source}: no images listed for split "{split}"')
        per_class = Counter(i['bbox_label'] for d in data_list for i in d['instances'])
        n_objects = sum(per_class.values())
        if not test_mode and n_objects == 0:
            raise DatasetError(f'{source}: no annotations in the training split "{split}" ({len(data_list)} images, '
                               f'none with an object of {classes}); a detector cannot learn from background alone')
        self.format, self.source, self._records = fmt, source, data_list
        counts = ', '.join(f'{name} {per_class[i]}' for i, name in enumerate(match.classes))
        MMLogger.get_current_instance().info(
            f'{fmt} {split or "set"} from {source}: {len(data_list)} images, {n_objects} objects ({counts}), '
            f'{sum(not d["instances"] for d in data_list)} background images')
        kwargs.setdefault('filter_cfg', dict(filter_empty_gt=not keep_empty, min_size=0))
        super().__init__(data_root=data_root, ann_file=source if osp.isfile(source) else '',
                         data_prefix=dict(img=''), metainfo=match.metainfo(), **kwargs)

    def load_data_list(self) -> List[Dict]:
        return list(self._records)

    def filter_data(self) -> List[Dict]:
        """mmdet's ``filter_cfg``: ``filter_empty_gt`` (outside test mode) and ``min_size`` of the image."""
        if self.test_mode or not self.filter_cfg:
            return self.data_list
        min_size = self.filter_cfg.get('min_size', 0) or 0
        empty = self.filter_cfg.get('filter_empty_gt', False)
        return [d for d in self.data_list
                if min(d['width'], d['height']) >= min_size and not (empty and not d['instances'])]

