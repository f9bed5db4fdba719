from .batch_augments import (BatchAffine, BatchBlurOrNoise, BatchBrightnessContrast, BatchHorizontalFlip,
                             BatchHueSaturationValue)
from .det_data_preprocessor import DetDataPreprocessor

__all__ = ['BatchAffine', 'BatchBlurOrNoise', 'BatchBrightnessContrast', 'BatchHorizontalFlip',
           'BatchHueSaturationValue', 'DetDataPreprocessor']
