"""Task adapters (:data:`~sscma.registry.TASKS`): one module per kind of model that exports."""
from .anomaly import AnomalyTask
from .base import Task, supported_model_types, task_of
from .classification import ClassificationTask
from .detection import DenseDetectionTask, is_dense_detector
from .fomo import FomoTask
from .keypoints import KeypointTask
from .pose import PoseTask
from .segmentation import SegmentationTask

__all__ = ['Task', 'supported_model_types', 'task_of', 'ClassificationTask', 'DenseDetectionTask',
           'is_dense_detector', 'FomoTask', 'KeypointTask', 'PoseTask', 'AnomalyTask', 'SegmentationTask']
