from .fomo import Fomo
from .keypoint_regressor import KeypointRegressor

__all__ = ['Fomo']
__all__ += ['KeypointRegressor']
