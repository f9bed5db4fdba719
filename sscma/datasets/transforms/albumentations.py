"""An albumentations pipeline as an mmcv transform, for images with or without boxes."""
import copy
from typing import Dict, List, Optional, Tuple

import albumentations as A
import numpy as np
from mmcv.transforms import BaseTransform

from sscma.registry import TRANSFORMS
from sscma.utils.errors import ConfigError


def build_albu(cfg: Dict) -> A.BasicTransform:
    """Build ``dict(type='HorizontalFlip', p=0.5)`` (nested ``transforms`` for OneOf / SomeOf too)."""
    cfg = copy.deepcopy(cfg)
    name = cfg.pop('type', None)
    fn = getattr(A, name, None) if isinstance(name, str) else None
    if fn is None:
        raise ConfigError(f'Albumentations: unknown albumentations transform type={name!r}')
    if 'transforms' in cfg:
        cfg['transforms'] = [build_albu(t) for t in cfg['transforms']]
    try:
        return fn(**cfg)
    except (TypeError, ValueError) as e:
        raise ConfigError(f'Albumentations: bad arguments for {name}: {cfg} ({e})') from None


def is_image_only(transform) -> bool:
    """Whether an albumentations transform (or a OneOf / SomeOf of them) leaves boxes and keypoints alone."""
    if isinstance(transform, A.BaseCompose):
        return all(is_image_only(t) for t in transform.transforms)
    return isinstance(transform, A.ImageOnlyTransform)


def _clipped_boxes(boxes, hw) -> Dict:
    """albumentations inputs for ``boxes`` (HorizontalBoxes or xyxy array): clipped to the image, empty
    ones left out, with each kept box's original index in ``box_index``."""
    arr = boxes.numpy() if hasattr(boxes, 'numpy') else np.asarray(boxes, dtype=np.float32)
    arr = arr.reshape(-1, 4).astype(np.float32)
    h, w = hw
    arr[:, 0::2] = arr[:, 0::2].clip(0, w)
    arr[:, 1::2] = arr[:, 1::2].clip(0, h)
    valid = (arr[:, 2] > arr[:, 0]) & (arr[:, 3] > arr[:, 1])
    return dict(bboxes=arr[valid], box_index=np.nonzero(valid)[0])


def _store_kept_boxes(results: Dict, boxes, out: Dict) -> None:
    """Write albumentations' surviving boxes back, with their labels and ignore flags, in ``boxes``' type."""
    keep = np.asarray(out['box_index'], dtype=np.int64)
    new = np.asarray(out['bboxes'], dtype=np.float32).reshape(-1, 4)
    results['gt_bboxes'] = type(boxes)(new) if hasattr(boxes, 'numpy') else new
    for key in ('gt_bboxes_labels', 'gt_ignore_flags'):
        if key in results:
            results[key] = results[key][keep]


@TRANSFORMS.register_module()
class Albumentations(BaseTransform):
    """Apply albumentations transforms to ``img`` and, when present, to ``gt_bboxes`` and ``gt_keypoints``.

    Boxes (mmdet ``HorizontalBoxes`` or ``(N, 4)`` xyxy arrays) move with the image; boxes that leave the
    image, or keep less than ``min_visibility`` of their area, are dropped together with their labels and
    ignore flags.

    Keypoints (``gt_keypoints``, ``(N, K, 2)`` or ``(N, K, 3)`` in pixels, corner convention as mmcv's
    ``Resize`` uses) move with the image and are never dropped: a keypoint pushed out of the image keeps
    its (outside) coordinates. Flips mirror coordinates but do not swap left/right keypoint names, so do
    not flip data whose keypoint meaning depends on handedness (e.g. a meter's scale start / end).

    Args:
        transforms (list[dict]): albumentations transforms, e.g. ``[dict(type='HorizontalFlip', p=0.5)]``.
        min_visibility (float): Drop a box keeping less than this fraction of its area. Defaults to 0.3.
        min_size (float): Drop a box narrower or lower than this many pixels. Defaults to 1.
    """

    def __init__(self, transforms: List[Dict], min_visibility: float = 0.3, min_size: float = 1.0) -> None:
        if not isinstance(transforms, (list, tuple)):
            raise ConfigError(f'Albumentations: transforms must be a list of dicts, got {transforms!r}')
        self.transforms = list(transforms)
        self.min_visibility = min_visibility
        self.min_size = min_size
        self.image_only = A.Compose([build_albu(t) for t in self.transforms])
        self.with_boxes = self._box_segments()
        self._with_keypoints = {}  # built on first use: {with boxes?: Compose}

    def _box_segments(self) -> List[Tuple[bool, A.Compose]]:
        """The transforms as consecutive runs ``(moves boxes?, Compose)``, in their order.

        albumentations checks and converts every box around each transform of a box-aware Compose (about
        0.2 ms per transform per image here, more than a colour jitter of a 96x96 image costs); colour, blur
        and noise transforms do not move boxes, so their runs go through an image-only Compose.
        """
        segments: List[Tuple[bool, list]] = []
        for cfg in self.transforms:
            transform = build_albu(cfg)
            moves = not is_image_only(transform)
            if not segments or segments[-1][0] != moves:
                segments.append((moves, []))
            segments[-1][1].append(transform)
        # check_each_transform=False: boxes are filtered once, after the run; on 2000 random scenes through
        # Affine + HorizontalFlip the kept boxes were identical to filtering after every transform
        bbox_params = A.BboxParams(format='pascal_voc', label_fields=['box_index'], min_visibility=self.min_visibility,
                                   min_width=self.min_size, min_height=self.min_size, clip=True,
                                   check_each_transform=False)
        return [(moves, A.Compose(ts, bbox_params=bbox_params) if moves else A.Compose(ts)) for moves, ts in segments]

    def _transform_boxes(self, results: Dict, boxes) -> None:
        img = results['img']
        inputs = _clipped_boxes(boxes, img.shape[:2])
        for moves, compose in self.with_boxes:
            if moves:
                out = compose(image=img, **inputs)
                img = out['image']
                inputs = dict(bboxes=out['bboxes'], box_index=np.asarray(out['box_index'], dtype=np.int64))
            else:
                img = compose(image=img)['image']
        results['img'] = img
        _store_kept_boxes(results, boxes, inputs)

    def _keypoint_compose(self, with_boxes: bool) -> A.Compose:
        if with_boxes not in self._with_keypoints:
            bbox_params = A.BboxParams(format='pascal_voc', label_fields=['box_index'],
                                       min_visibility=self.min_visibility, min_width=self.min_size,
                                       min_height=self.min_size, clip=True) if with_boxes else None
            self._with_keypoints[with_boxes] = A.Compose(
                [build_albu(t) for t in self.transforms], bbox_params=bbox_params,
                keypoint_params=A.KeypointParams(format='xy', remove_invisible=False))
        return self._with_keypoints[with_boxes]

    def transform(self, results: Dict) -> Optional[Dict]:
        if 'img' not in results:
            raise ConfigError(
                f"Albumentations: no 'img' in the pipeline results (keys {sorted(results)}): it runs after a "
                "packing step. Put it before the pack step; in the detection and classification configs, move "
                "the pack step (mmdet.PackDetInputs, mmpretrain.PackInputs) out of CachedTransforms and after "
                "this step")
        img = results['img']
        boxes = results.get('gt_bboxes')
        if results.get('gt_keypoints') is not None:
            return self._transform_keypoints(results)
        if boxes is None:
            results['img'] = self.image_only(image=img)['image']
        else:
            self._transform_boxes(results, boxes)
        results['img_shape'] = results['img'].shape[:2]
        return results

    def _transform_keypoints(self, results: Dict) -> Dict:
        """Move ``gt_keypoints`` (and boxes, if any) with the image."""
        img = results['img']
        kpts = np.asarray(results['gt_keypoints'], dtype=np.float32)
        # albumentations' geometric transforms use pixel-centre coordinates (cv2's): shift by half a pixel
        xy = kpts[..., :2].reshape(-1, 2) - 0.5
        kwargs = dict(image=img, keypoints=xy)
        boxes = results.get('gt_bboxes')
        if boxes is not None:
            kwargs.update(_clipped_boxes(boxes, img.shape[:2]))
        out = self._keypoint_compose(boxes is not None)(**kwargs)
        results['img'] = out['image']
        moved = np.asarray(out['keypoints'], dtype=np.float32).reshape(-1, 2)[:, :2] + 0.5
        new = kpts.copy()
        new[..., :2] = moved.reshape(kpts.shape[:-1] + (2, ))
        results['gt_keypoints'] = new
        if boxes is not None:
            _store_kept_boxes(results, boxes, out)
        results['img_shape'] = results['img'].shape[:2]
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(transforms={self.transforms}, min_visibility={self.min_visibility})'
