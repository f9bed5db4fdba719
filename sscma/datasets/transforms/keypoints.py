"""Packing for whole-image keypoint regression (no top-down crop): image tensor + ``PoseDataSample``."""
from typing import Dict, Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import InstanceData
from mmpose.structures import PoseDataSample

from sscma.registry import TRANSFORMS
from sscma.utils.errors import DatasetError


@TRANSFORMS.register_module()
class PackKeypointInputs(BaseTransform):
    """Pack ``img`` into a ``(C, H, W)`` uint8 tensor and the keypoints into a ``PoseDataSample``.

    ``gt_instances.keypoints`` is ``(1, K, 2)`` float32 in network-input pixels (after the pipeline's
    resize / augmentation) and ``gt_instances.keypoints_visible`` ``(1, K)``; the metainfo keeps
    ``scale_factor`` (input pixels per original pixel) to map predictions back to the original image.

    Args:
        meta_keys (Sequence[str]): Keys of ``results`` copied into the sample's metainfo.
    """

    def __init__(self, meta_keys: Sequence[str] = ('img_id', 'img_path', 'ori_shape', 'img_shape',
                                                   'scale_factor')) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: Dict) -> Dict:
        img = results['img']
        if img.ndim == 2:
            img = img[..., None]
        inputs = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
        sample = PoseDataSample()
        gt = InstanceData()
        if results.get('gt_keypoints') is not None:
            kpts = np.asarray(results['gt_keypoints'], dtype=np.float32)
            if kpts.ndim == 2:
                kpts = kpts[None]
            if kpts.ndim != 3 or kpts.shape[-1] < 2:
                raise DatasetError(f'{results.get("img_path")}: gt_keypoints must be (N, K, 2), got {kpts.shape}')
            vis = results.get('gt_keypoints_visible')
            vis = np.ones(kpts.shape[:2], np.float32) if vis is None else np.asarray(vis, np.float32)
            gt.keypoints = torch.from_numpy(np.ascontiguousarray(kpts[..., :2]))
            gt.keypoints_visible = torch.from_numpy(np.ascontiguousarray(vis.reshape(kpts.shape[:2])))
        sample.gt_instances = gt
        meta = {k: results[k] for k in self.meta_keys if k in results}
        meta.setdefault('scale_factor', (1.0, 1.0))
        meta.setdefault('img_shape', img.shape[:2])
        sample.set_metainfo(meta)
        return dict(inputs=inputs, data_samples=sample)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'
