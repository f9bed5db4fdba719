from .fomo_head import FomoHead

__all__ = ['FomoHead']
