"""Run the deterministic head of a pipeline (decode, annotations, resize) once per image and keep it in RAM."""
import copy
from typing import Dict, List, Optional

import numpy as np
import torch
from mmcv.transforms import BaseTransform, Compose

from sscma.registry import TRANSFORMS
from sscma.utils.errors import ConfigError


def _nbytes(results: Dict) -> int:
    total = 0
    for value in results.values():
        if isinstance(value, np.ndarray):
            total += value.nbytes
        elif isinstance(value, torch.Tensor):
            total += value.numel() * value.element_size()
        elif hasattr(value, 'tensor'):  # mmdet boxes
            total += value.tensor.numel() * value.tensor.element_size()
    return total


@TRANSFORMS.register_module()
class CachedTransforms(BaseTransform):
    """``transforms`` run on an image's first visit; later visits get a copy of the stored result.

    On a small dataset, decoding a JPEG and resizing it costs more than the model's step on the resized
    image; the random augmentations that follow still run every time. Only deterministic transforms belong
    inside (``LoadImage``, ``LoadAnnotations``, a fixed ``Resize``). Images are keyed by ``img_path`` and
    ``sample_idx``; a sample without a path (an in-memory frame) is not cached. Each process (each data-loader worker) holds its
    own cache, filled as it meets the images, and stops adding once it holds ``max_mb``.

    Args:
        transforms (list[dict]): The deterministic transforms.
        max_mb (float): Cache size per process in MiB; 0 turns caching off. Defaults to 512.
    """

    def __init__(self, transforms: List[Dict], max_mb: float = 512) -> None:
        if not isinstance(transforms, (list, tuple)) or not transforms:
            raise ConfigError(f'CachedTransforms: transforms must be a non-empty list, got {transforms!r}')
        if max_mb < 0:
            raise ConfigError(f'CachedTransforms: max_mb={max_mb} must be >= 0')
        self.transforms = Compose(list(transforms))
        self.max_bytes = int(max_mb * 2**20)
        self._cache: Dict[tuple, Dict] = {}
        self.cached_bytes = 0

    def transform(self, results: Dict) -> Optional[Dict]:
        key = (results['img_path'], results.get('sample_idx')) if results.get('img_path') else None
        if key is not None and key in self._cache:
            return copy.deepcopy(self._cache[key])  # later transforms may work in place
        out = self.transforms(results)
        if out is not None and key is not None:
            size = _nbytes(out)
            if self.cached_bytes + size <= self.max_bytes:
                self._cache[key] = copy.deepcopy(out)
                self.cached_bytes += size
        return out

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(transforms={self.transforms}, max_mb={self.max_bytes / 2**20:g})'
