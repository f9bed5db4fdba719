from .batch_augments import BatchAffine, BatchHorizontalFlip, BatchRandomResizedCrop
from .cls_data_preprocessor import ClsDataPreprocessor
from .colour_augments import BatchBlurOrNoise, BatchBrightnessContrast, BatchHueSaturationValue
from .copy_paste import BatchCopyPaste
from .det_data_preprocessor import DetDataPreprocessor
from .mix_augments import BatchMixUp, BatchMosaic

__all__ = ['BatchAffine', 'BatchBlurOrNoise', 'BatchBrightnessContrast', 'BatchCopyPaste', 'BatchHorizontalFlip',
           'BatchHueSaturationValue', 'BatchMixUp', 'BatchMosaic', 'BatchRandomResizedCrop', 'ClsDataPreprocessor',
           'DetDataPreprocessor']
