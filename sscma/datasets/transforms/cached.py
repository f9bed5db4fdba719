"""Run the deterministic head of a pipeline (decode, annotations, resize) once per image and keep it in RAM."""
import copy
from typing import Dict, List, Optional

import numpy as np
import torch
from mmcv.transforms import BaseTransform, Compose
from mmdet.structures.bbox import BaseBoxes
from mmengine.structures import BaseDataElement

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


_IMMUTABLE = (str, bytes, int, float, bool, type(None))


def _copy_element(value: BaseDataElement) -> BaseDataElement:
    new = value.__class__.__new__(value.__class__)  # its fields and the two sets naming them live in __dict__
    new.__dict__.update({k: set(v) if k in ('_metainfo_fields', '_data_fields') else copy_results(v)
                         for k, v in value.__dict__.items()})
    return new


def _copy_boxes(value: BaseBoxes) -> BaseBoxes:
    new = value.__class__.__new__(value.__class__)  # BaseBoxes.clone re-runs __init__'s checks: 5.7 vs 3.3 us
    new.__dict__.update(value.__dict__)
    new.tensor = value.tensor.clone()
    return new


def _copier(kind: type):
    """How :func:`copy_results` copies a value of type ``kind`` (looked up once per type)."""
    if issubclass(kind, _IMMUTABLE):
        return lambda value: value
    if issubclass(kind, np.ndarray):
        return np.ndarray.copy
    if issubclass(kind, torch.Tensor):
        return torch.Tensor.clone
    if issubclass(kind, BaseBoxes):
        return _copy_boxes
    if issubclass(kind, BaseDataElement):
        return _copy_element
    if kind is dict:
        return lambda value: {k: copy_results(v) for k, v in value.items()}
    if kind in (list, tuple):
        return lambda value: kind(copy_results(v) for v in value)
    return copy.deepcopy


_COPIERS: Dict[type, object] = {}


def copy_results(value):
    """A copy of a pipeline result that later steps may change in place, ~10x faster than ``copy.deepcopy``
    on a packed detection sample: arrays, tensors, boxes, dicts, lists and data elements (``DetDataSample``,
    ``InstanceData``) are copied, immutable values shared, anything else deep-copied."""
    kind = type(value)
    copier = _COPIERS.get(kind)
    if copier is None:
        copier = _COPIERS[kind] = _copier(kind)
    return copier(value)


@TRANSFORMS.register_module()
class CachedTransforms(BaseTransform):
    """``transforms`` run on an image's first visit; later visits get a copy of the stored result.

    On a small dataset, decoding a JPEG and resizing it costs more than the model's step on the resized
    image; the random augmentations that follow still run every time. Only deterministic transforms belong
    inside (``LoadImage``, ``LoadAnnotations``, a fixed ``Resize``, and a packing step such as
    ``mmdet.PackDetInputs`` when no random transform follows it in the pipeline). Images are keyed by ``img_path`` and
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
            return copy_results(self._cache[key])  # later transforms (or the batch augments) may work in place
        out = self.transforms(results)
        if out is not None and key is not None:
            size = _nbytes(out)
            if self.cached_bytes + size <= self.max_bytes:
                self._cache[key] = copy_results(out)
                self.cached_bytes += size
        return out

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(transforms={self.transforms}, max_mb={self.max_bytes / 2**20:g})'
