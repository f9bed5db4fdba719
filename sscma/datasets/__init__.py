from .builtin import default_data_home, ensure_digits_folder, ensure_fomo_coco
from .coco_detection import find_coco_split, read_coco_classes
from .detection_dataset import DetectionDataset
from .formats import DATASET_FORMATS, DatasetFormat, detect_format, recognise
from .image_folder import ImageFolderDataset, read_labels_json
from .transforms import *  # noqa: F401,F403
from .keypoint_dataset import MeterKeypointDataset, read_coco_keypoints, read_labelme_folder
from .meter_builtin import METER_KEYPOINTS, ensure_meter_coco

__all__ = [
    'default_data_home', 'ensure_digits_folder', 'ensure_fomo_coco', 'DetectionDataset',
    'detect_format', 'recognise', 'DATASET_FORMATS', 'DatasetFormat', 'find_coco_split',
    'read_coco_classes', 'ImageFolderDataset', 'read_labels_json'
]
__all__ += ['MeterKeypointDataset', 'read_coco_keypoints', 'read_labelme_folder', 'METER_KEYPOINTS',
            'ensure_meter_coco']
from .anomaly_builtin import ANOMALY_CATEGORIES, ensure_anomaly_category
from .anomaly_dataset import AnomalyDataset

__all__ += ['ANOMALY_CATEGORIES', 'ensure_anomaly_category', 'AnomalyDataset']
from .segmentation_dataset import SegmentationDataset, rasterise, read_mask

__all__ += ['SegmentationDataset', 'rasterise', 'read_mask']
from .pose_builtin import COCO_KEYPOINTS, ensure_pose_coco, write_yolo_pose
from .pose_dataset import PoseDataset

__all__ += ['COCO_KEYPOINTS', 'ensure_pose_coco', 'write_yolo_pose', 'PoseDataset']
