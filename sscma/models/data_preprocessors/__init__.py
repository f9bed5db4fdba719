from .batch_augments import (BatchAffine, BatchBlurOrNoise, BatchBrightnessContrast, BatchHorizontalFlip,
                             BatchHueSaturationValue, BatchRandomResizedCrop)
from .cls_data_preprocessor import ClsDataPreprocessor
from .det_data_preprocessor import DetDataPreprocessor

__all__ = ['BatchAffine', 'BatchBlurOrNoise', 'BatchBrightnessContrast', 'BatchHorizontalFlip',
           'BatchHueSaturationValue', 'BatchRandomResizedCrop', 'ClsDataPreprocessor', 'DetDataPreprocessor']
