"""Many objects' keypoints per image (bottom-up pose), read through the same format table as detection.

COCO-keypoints json (Roboflow export ``<split>/_annotations.coco.json``, COCO 2017
``annotations/person_keypoints_<split>.json``, CVAT "COCO Keypoints 1.0") and Ultralytics YOLO-pose txt
(``data.yaml`` with ``kpt_shape``, ``flip_idx`` and optionally ``kpt_names``) are recognised by
:func:`~.formats.recognise` and read by the detection readers, which keep each object's keypoints. The data list
is mmpose's bottom-up one (``BaseCocoStyleDataset``, ``data_mode='bottomup'``), so mmpose's transforms, codecs
and ``CocoMetric`` work unchanged.

Keypoints are matched by name: a model trained on ``[nose, left_eye, ...]`` is scored on a dataset listing them
in another order with each keypoint in its own place (``model_keypoints``). Left/right flip pairs come from
the data (YOLO ``flip_idx``, else names with ``left`` / ``right``). OKS sigmas: ``sigmas`` when given, COCO's
17 person sigmas when the keypoints are COCO's, else :data:`UNIFORM_SIGMA` for every keypoint.
"""
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.logging import MessageHub, MMLogger
from mmpose.datasets.datasets.base import BaseCocoStyleDataset

from sscma.registry import DATASETS
from sscma.utils.class_names import match_classes
from sscma.utils.errors import DatasetError

from .coco_detection import coco_keypoint_names, find_coco_split, load_coco_json
from .formats import format_named, recognise
from .pose_builtin import COCO_KEYPOINTS, flip_indices
from .yolo_detection import YoloLayout, read_data_yaml

#: COCO's per-keypoint OKS sigmas, in COCO_KEYPOINTS order
COCO_SIGMAS = (0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107, 0.087,
               0.087, 0.089, 0.089)
UNIFORM_SIGMA = 0.067  # the mean of COCO's, for keypoints without their own


def pose_sigmas(names: Sequence[str], sigmas: Optional[Sequence[float]] = None) -> Tuple[np.ndarray, str]:
    """The OKS sigmas of keypoints ``names`` and where they come from, for the report."""
    if sigmas is not None:
        if len(sigmas) != len(names):
            raise DatasetError(f'sigmas has {len(sigmas)} values for {len(names)} keypoints {list(names)}')
        return np.asarray(sigmas, np.float32), 'configured'
    if sorted(names) == sorted(COCO_KEYPOINTS):
        coco = dict(zip(COCO_KEYPOINTS, COCO_SIGMAS))
        return np.asarray([coco[n] for n in names], np.float32), "COCO's person sigmas"
    return np.full(len(names), UNIFORM_SIGMA, np.float32), f'uniform {UNIFORM_SIGMA}'


def _yolo_keypoint_meta(root: str, count: int) -> Tuple[List[str], List[Tuple[int, int]], Optional[List[int]]]:
    """``(names, skeleton, flip_idx)`` of a YOLO-pose ``data.yaml``: ``kpt_names`` (a list, or ``{class: list}``)
    else ``kpt_0`` ...; ``skeleton`` (0-based pairs) when present; ``flip_idx`` checked to be a permutation."""
    layout = YoloLayout(root)
    data = read_data_yaml(layout.yaml)
    names = data.get('kpt_names')
    if isinstance(names, dict):
        names = next(iter(names.values()), None)
    names = [str(n) for n in names] if isinstance(names, (list, tuple)) else [f'kpt_{i}' for i in range(count)]
    if len(names) != count:
        raise DatasetError(f'{layout.yaml}: kpt_names has {len(names)} names, kpt_shape {count} keypoints')
    flip = data.get('flip_idx')
    if flip is not None and (not isinstance(flip, (list, tuple)) or sorted(flip) != list(range(count))):
        raise DatasetError(f'{layout.yaml}: flip_idx must list each keypoint index 0..{count - 1} once (the index '
                           f'each keypoint takes under a horizontal flip), got {flip!r}')
    skeleton = [tuple(int(i) for i in link) for link in data.get('skeleton') or []]
    return names, skeleton, (list(flip) if flip is not None else None)


def read_pose_split(data_root: str, split: str, fmt: str = 'auto'):
    """``(format, classes, keypoint names, skeleton, flip indices, records, source)`` of a keypoint split.

    Records are the detection readers' (``img_path``, ``width``, ``height``, ``instances`` with ``bbox``, ``label``,
    ``ignore_flag``, ``keypoints`` (K, 3) and for COCO ``area``).
    """
    entry = recognise(data_root, 'detection')[0] if fmt == 'auto' else format_named(fmt)
    if entry.name not in ('coco', 'yolo'):
        raise DatasetError(f'data_root={data_root} is a {entry.title} dataset, which has no keypoints; pose data '
                           'is COCO-keypoints json or YOLO-pose txt (docs/pose.md)')
    classes, records, source = entry.read(data_root, split)
    if entry.name == 'coco':
        ann_file = source if osp.isfile(source) else find_coco_split(data_root, split)[0]
        names, skeleton = coco_keypoint_names(load_coco_json(ann_file), ann_file)
        flip = None
    else:
        shape = YoloLayout(data_root).kpt_shape()
        if shape is None:
            raise DatasetError(f'{source} has no kpt_shape: a YOLO detection dataset, not YOLO-pose (add '
                               'kpt_shape: [keypoints, 3] and flip_idx to data.yaml)')
        names, skeleton, flip = _yolo_keypoint_meta(data_root, shape[0])
    flip = flip if flip is not None else flip_indices(names)
    return entry.name, classes, names, skeleton, flip, records, source


@DATASETS.register_module()
class PoseDataset(BaseCocoStyleDataset):
    """Objects with boxes and K keypoints each, several per image, in mmpose's bottom-up data list.

    Args:
        data_root (str): Dataset root; empty means the generated set named by ``builtin``.
        split (str): ``train``, ``valid``/``val`` or ``test``.
        builtin (str): ``'figures'`` (17 COCO person keypoints) or ``'gauges'`` (4 meter keypoints).
        format (str): ``'auto'``, ``'coco'`` or ``'yolo'``.
        classes (Sequence[str], optional): The one class to read when the data has several.
        num_keypoints (int, optional): Expected number of keypoints (the model's); a mismatch is an error.
        sigmas (Sequence[float], optional): OKS sigmas in the data's keypoint order (see :func:`pose_sigmas`).
        model_classes (Sequence[str], optional): The model's class names: matched by name.
        model_keypoints (Sequence[str], optional): The model's keypoint names in its output order: the data's
            keypoints are reordered to it by name; different names are an error naming both lists.
        class_match (str): As for detection (``'name'`` or ``'shared'``).
        **kwargs: ``pipeline``, ``test_mode`` ... for mmpose's ``BaseCocoStyleDataset``.
    """

    def __init__(self, data_root: str = '', split: str = 'train', builtin: str = 'figures', format: str = 'auto',
                 classes: Optional[Sequence[str]] = None, num_keypoints: Optional[int] = None,
                 sigmas: Optional[Sequence[float]] = None, model_classes: Optional[Sequence[str]] = None,
                 model_keypoints: Optional[Sequence[str]] = None, class_match: str = 'name', **kwargs) -> None:
        if not data_root:
            from .pose_builtin import ensure_pose_coco
            data_root = str(ensure_pose_coco(builtin))
        fmt, found, names, skeleton, flip, records, source = read_pose_split(data_root, split, format)
        wanted = list(classes) if classes else found
        missing = sorted(set(wanted) - set(found))
        if missing:
            raise DatasetError(f'classes {missing} are not classes of {source} (it has {found})')
        if len(wanted) != 1:
            raise DatasetError(f'{source} has {len(wanted)} classes {wanted}; a pose model here learns one kind of '
                               f'object: choose it with --cfg-options "classes=[\'{wanted[0]}\']"')
        match = match_classes(model_classes, wanted, source, class_match)
        order = _keypoint_order(names, model_keypoints, source)
        names = [names[i] for i in order]
        position = {old: new for new, old in enumerate(order)}
        flip = [position[flip[i]] for i in order]
        skeleton = [(position[a], position[b]) for a, b in skeleton if a in position and b in position]
        if num_keypoints is not None and num_keypoints != len(names):
            raise DatasetError(f'num_keypoints={num_keypoints} but {source} has {len(names)} keypoints {names}; '
                               f'set --cfg-options num_keypoints={len(names)}')
        sig, self.sigma_source = pose_sigmas(names, sigmas)
        self.format, self.source, self.keypoint_names = fmt, source, tuple(names)
        self._instances, self._images = self._instance_list(records, wanted[0], order)
        if not kwargs.get('test_mode', False) and not self._instances:
            raise DatasetError(f'{source}: no object with keypoints in the training split "{split}"')
        labelled = sum(int(i['num_keypoints']) for i in self._instances)
        MMLogger.get_current_instance().info(
            f'{fmt} keypoints {split} from {source}: {len(self._images)} images, {len(self._instances)} objects, '
            f'{len(names)} keypoints ({labelled} labelled), OKS sigmas: {self.sigma_source}')
        metainfo = dict(
            dataset_name=f'{fmt}_pose', joint_weights=[1.0] * len(names), sigmas=sig.tolist(),
            keypoint_info={i: dict(name=n, id=i, color=[255, 128, 0], type='', swap=names[flip[i]] if flip[i] != i
                                   else '') for i, n in enumerate(names)},
            skeleton_info={i: dict(link=(names[a], names[b]), id=i, color=[0, 255, 0])
                           for i, (a, b) in enumerate(skeleton)})
        kwargs.setdefault('data_mode', 'bottomup')
        super().__init__(ann_file='', metainfo=metainfo, data_root=data_root, data_prefix=dict(img=''), **kwargs)
        # mmpose's CocoMetric would load the annotation file named here; its ground truth comes from this dataset
        MessageHub.get_current_instance().update_info(f'{metainfo["dataset_name"]}_ann_file', None)
        self._metainfo.update(match.metainfo(), keypoint_names=self.keypoint_names, sigma_source=self.sigma_source,
                              CLASSES=[dict(id=1, name=match.classes[0], keypoints=list(names),
                                            skeleton=[[a + 1, b + 1] for a, b in skeleton])])

    @staticmethod
    def _instance_list(records: List[Dict], cls: str, order: List[int]) -> Tuple[List[Dict], List[Dict]]:
        """mmpose's per-object ``parse_data_info`` dicts (raw COCO annotations kept for ``CocoMetric``) and the
        image list, numbered in reading order (so every layout of the same images numbers them alike)."""
        instances, images = [], []
        for img_id, rec in enumerate(records):
            images.append(dict(img_id=img_id, img_path=rec['img_path'], width=rec['width'], height=rec['height']))
            for inst in rec['instances']:
                if inst['label'] != cls or inst.get('keypoints') is None:
                    continue
                kpts = np.asarray(inst['keypoints'], np.float32)[order]
                x0, y0, x1, y1 = (float(v) for v in inst['bbox'])
                x0, x1 = np.clip([x0, x1], 0, rec['width'])
                y0, y1 = np.clip([y0, y1], 0, rec['height'])
                area = float(inst.get('area') or (x1 - x0) * (y1 - y0))
                n_kpt = int((kpts[:, 2] > 0).sum())
                raw = dict(id=len(instances) + 1, image_id=img_id, category_id=1,
                           bbox=[float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                           keypoints=kpts.reshape(-1).tolist(), area=area, iscrowd=int(inst['ignore_flag']),
                           num_keypoints=n_kpt)
                instances.append(dict(
                    img_id=img_id, img_path=rec['img_path'], bbox=np.array([[x0, y0, x1, y1]], np.float32),
                    bbox_score=np.ones(1, np.float32), num_keypoints=n_kpt, keypoints=kpts[None, :, :2],
                    keypoints_visible=np.minimum(1, kpts[None, :, 2]), area=np.array(area, np.float32),
                    iscrowd=raw['iscrowd'], segmentation=None, id=raw['id'], category_id=np.array(1), raw_ann_info=raw))
        return instances, images

    def _load_annotations(self) -> Tuple[List[Dict], List[Dict]]:
        return self._instances, self._images


def _keypoint_order(names: List[str], model_keypoints: Optional[Sequence[str]], source: str) -> List[int]:
    """Indices into ``names`` in the model's keypoint order (the data's own when the model has no names)."""
    if not model_keypoints or list(model_keypoints) == list(names):
        return list(range(len(names)))
    model = [str(n) for n in model_keypoints]
    if sorted(model) != sorted(names):
        raise DatasetError(f'keypoint names differ: model {model} vs dataset {names} ({source})')
    MMLogger.get_current_instance().info(f'keypoints mapped by name: model {model} vs dataset {names} ({source})')
    return [names.index(n) for n in model]
