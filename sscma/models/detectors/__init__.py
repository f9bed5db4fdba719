from .fomo import Fomo
from .keypoint_regressor import KeypointRegressor

__all__ = ['Fomo']
__all__ += ['KeypointRegressor']
from .gaussian_anomaly import GaussianAnomalyDetector

__all__ += ['GaussianAnomalyDetector']
