"""Task adapters (:data:`~sscma.registry.TASK_ADAPTERS`): one module per kind of model that exports."""
from .base import TaskAdapter, supported_model_types, task_adapter
from .classification import ClassificationAdapter
from .detection import DenseDetectionAdapter, is_dense_detector
from .fomo import FomoAdapter
from .keypoints import KeypointAdapter

__all__ = ['TaskAdapter', 'supported_model_types', 'task_adapter', 'ClassificationAdapter', 'DenseDetectionAdapter',
           'is_dense_detector', 'FomoAdapter', 'KeypointAdapter']
