"""Loading an image that is already in memory (a video or camera frame) the way ``LoadImage`` loads a file."""
from typing import Dict

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from sscma.registry import TRANSFORMS
from sscma.utils.errors import DatasetError


@TRANSFORMS.register_module()
class LoadImageFromArray(BaseTransform):
    """Take ``results['img']`` (a BGR ``uint8`` array, as ``cv2.VideoCapture.read`` gives) in place of a file.

    The results are those of :class:`LoadImage` on a file with the same pixels: ``img`` converted as
    ``color_type`` says (one channel for ``'grayscale'``), ``img_shape`` and ``ori_shape`` set, so the rest of
    a config's test pipeline (``Resize``, ``Pad``, ``Pack...``) runs unchanged on video frames. mmcv's
    ``LoadImageFromFile`` only reads paths.

    Args:
        color_type (str): As ``LoadImage``'s: ``'color'`` (default), ``'grayscale'``, ``'unchanged'`` and the
            ``*_ignore_orientation`` variants (a frame has no EXIF orientation).
        to_float32 (bool): Return a float32 image. Defaults to False.
    """

    def __init__(self, color_type: str = 'color', to_float32: bool = False) -> None:
        if color_type not in ('color', 'grayscale', 'unchanged', 'color_ignore_orientation',
                              'grayscale_ignore_orientation'):
            raise DatasetError(f'LoadImageFromArray: color_type={color_type!r}, expected color, grayscale or '
                               'unchanged')
        self.color_type = color_type
        self.to_float32 = to_float32

    def transform(self, results: Dict) -> Dict:
        img = results.get('img')
        where = results.get('img_path') or 'frame'
        if not isinstance(img, np.ndarray) or img.ndim not in (2, 3) or img.size == 0:
            raise DatasetError(f'{where}: expected an image array (H, W[, C]), got '
                               f'{getattr(img, "shape", type(img).__name__)}')
        if self.color_type.startswith('grayscale'):
            img = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        elif self.color_type != 'unchanged':
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if img.ndim == 2 else img[..., :3]
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = np.ascontiguousarray(img)
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(color_type={self.color_type!r}, to_float32={self.to_float32})'
