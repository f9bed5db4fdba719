from .fomo import Fomo

__all__ = ['Fomo']
