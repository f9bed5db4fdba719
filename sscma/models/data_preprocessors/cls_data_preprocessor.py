"""mmpretrain's ``ClsDataPreprocessor`` with batch augmentations in pixels."""
from typing import Dict, List, Optional

from mmpretrain.models.utils import ClsDataPreprocessor as MMPretrainClsDataPreprocessor

from sscma.registry import MODELS
from .pixel_augments import PixelAugmentsMixin


@MODELS.register_module()
class ClsDataPreprocessor(PixelAugmentsMixin, MMPretrainClsDataPreprocessor):
    """mmpretrain's ``ClsDataPreprocessor`` plus ``augments``: batch augmentations (``BatchRandomResizedCrop``,
    ``BatchAffine``, ``BatchBrightnessContrast``, ...) applied in training, in order, to the stacked images in
    0-255 pixels (RGB when ``to_rgb``), then normalised once. mmpretrain's own ``batch_augments`` (Mixup,
    CutMix) run before them; they mix pixels linearly, so mixing before or after normalising is the same.

    Args:
        augments (list[dict], optional): The batch augmentations. Defaults to None.
        **kwargs: mmpretrain's ``ClsDataPreprocessor`` arguments (``mean``, ``std``, ``to_rgb``, ...).
    """

    def __init__(self, augments: Optional[List[Dict]] = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.build_augments(augments)
