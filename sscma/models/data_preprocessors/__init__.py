from .batch_augments import BatchAffine, BatchHorizontalFlip, BatchRandomResizedCrop
from .cls_data_preprocessor import ClsDataPreprocessor
from .colour_augments import BatchBlurOrNoise, BatchBrightnessContrast, BatchHueSaturationValue
from .det_data_preprocessor import DetDataPreprocessor

__all__ = ['BatchAffine', 'BatchBlurOrNoise', 'BatchBrightnessContrast', 'BatchHorizontalFlip',
           'BatchHueSaturationValue', 'BatchRandomResizedCrop', 'ClsDataPreprocessor', 'DetDataPreprocessor']
