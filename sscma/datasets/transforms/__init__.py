from .albumentations import Albumentations
from .loading import LoadImage

__all__ = ['Albumentations', 'LoadImage']
