from .albumentations import Albumentations

__all__ = ['Albumentations']
