from .albumentations import Albumentations
from .loading import LoadImage
from .keypoints import PackKeypointInputs

__all__ = ['Albumentations', 'LoadImage']
__all__ += ['PackKeypointInputs']
