from .fomo_metric import FomoMetric, f1_by_threshold, match_centroids, sample_matches
from .prediction_dump import PredictionDump
from .meter_metric import MeterMetric, reading_from_keypoints, readings_from_keypoints

__all__ = ['FomoMetric', 'f1_by_threshold', 'match_centroids', 'sample_matches']
__all__ += ['MeterMetric', 'reading_from_keypoints', 'readings_from_keypoints']
__all__ += ['PredictionDump']
from .anomaly_metric import AnomalyMetric, aupro, calibrate_threshold, image_auroc

__all__ += ['AnomalyMetric', 'aupro', 'calibrate_threshold', 'image_auroc']
from .seg_metric import SegMetric, confusion, iou_from_confusion

__all__ += ['SegMetric', 'confusion', 'iou_from_confusion']
from .pose_metric import PoseMetric, match_by_oks, pck_per_keypoint

__all__ += ['PoseMetric', 'match_by_oks', 'pck_per_keypoint']
