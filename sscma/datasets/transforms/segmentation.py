"""Masks through the pipeline: read at the image's size, resized with the image (nearest neighbour), packed."""
from typing import Dict, Sequence

import cv2
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import BaseDataElement

from sscma.registry import TRANSFORMS


@TRANSFORMS.register_module()
class LoadSegMask(BaseTransform):
    """``gt_seg_map``: the item's index mask (:func:`~sscma.datasets.segmentation_dataset.read_mask`), classes
    in the model's order; nothing for an image without annotations (``tools/inference.py``)."""

    def transform(self, results: Dict) -> Dict:
        from sscma.datasets.segmentation_dataset import read_mask
        if 'seg_source' not in results:
            return results
        results['gt_seg_map'] = read_mask(results['seg_source'], results.get('seg_lut'))
        return results


@TRANSFORMS.register_module()
class SegResize(BaseTransform):
    """Resize the image (bilinear) and its mask (nearest neighbour only) to ``scale`` ``(width, height)``."""

    def __init__(self, scale: Sequence[int]) -> None:
        self.scale = (int(scale[0]), int(scale[1]))

    def transform(self, results: Dict) -> Dict:
        h, w = results['img'].shape[:2]
        results['img'] = cv2.resize(results['img'], self.scale, interpolation=cv2.INTER_LINEAR)
        if 'gt_seg_map' in results:
            results['gt_seg_map'] = cv2.resize(results['gt_seg_map'], self.scale, interpolation=cv2.INTER_NEAREST)
        results['img_shape'] = (self.scale[1], self.scale[0])
        results['scale_factor'] = (self.scale[0] / w, self.scale[1] / h)
        return results


@TRANSFORMS.register_module()
class PackSegInputs(BaseTransform):
    """``inputs`` (C, H, W uint8) and a data sample with ``gt_sem_seg`` (H, W int64, 255 = ignore) and the
    metainfo the metric reads the original-size mask from (``seg_source``, ``seg_lut``)."""
    META_KEYS = ('img_path', 'ori_shape', 'img_shape', 'scale_factor', 'seg_source', 'seg_lut')

    def transform(self, results: Dict) -> Dict:
        img = results['img']
        img = img[..., None] if img.ndim == 2 else img
        sample = BaseDataElement(metainfo={k: results[k] for k in self.META_KEYS if k in results})
        if 'gt_seg_map' in results:
            sample.gt_sem_seg = torch.from_numpy(np.ascontiguousarray(results['gt_seg_map']).astype(np.int64))
        return dict(inputs=torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))), data_samples=sample)
