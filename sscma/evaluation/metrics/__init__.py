from .fomo_metric import FomoMetric, match_centroids
from .prediction_dump import PredictionDump
from .meter_metric import MeterMetric, reading_from_keypoints, readings_from_keypoints

__all__ = ['FomoMetric', 'match_centroids']
__all__ += ['MeterMetric', 'reading_from_keypoints', 'readings_from_keypoints']
__all__ += ['PredictionDump']
