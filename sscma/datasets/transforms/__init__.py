from .albumentations import Albumentations
from .array_loading import LoadImageFromArray
from .cached import CachedTransforms
from .loading import LoadImage
from .keypoints import PackKeypointInputs

__all__ = ['Albumentations', 'LoadImage']
__all__ += ['PackKeypointInputs', 'LoadImageFromArray', 'CachedTransforms']
from .segmentation import LoadSegMask, PackSegInputs, SegResize

__all__ += ['LoadSegMask', 'PackSegInputs', 'SegResize']
