from .image_folder import ImageFolderDataset, read_labels_json

__all__ = ['ImageFolderDataset', 'read_labels_json']
