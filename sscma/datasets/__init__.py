from .coco_detection import CocoDetectionDataset, find_coco_split, read_coco_classes
from .image_folder import ImageFolderDataset, read_labels_json
from .transforms import *  # noqa: F401,F403

__all__ = ['CocoDetectionDataset', 'find_coco_split', 'read_coco_classes', 'ImageFolderDataset',
           'read_labels_json']
