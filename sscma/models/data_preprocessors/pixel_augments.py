"""The part the sscma data preprocessors share: batch augmentations on the 0-255 pixels, then one normalisation."""
from typing import Dict, List, Optional

import torch
from torch import nn

from sscma.registry import MODELS


class PixelAugmentsMixin:
    """Put before an mmengine ``ImgDataPreprocessor`` subclass (mmdet's, mmpretrain's): in training, the
    ``augments`` (``BatchAffine``, ... from ``sscma.models.data_preprocessors.batch_augments``) run in order on
    the stacked images in 0-255 pixels (after the parent's channel conversion, batch-level steps and padding,
    with its normalisation turned off), then the images are normalised once. Without augments, or in
    evaluation, it is the parent preprocessor. Equal-size images are stacked first, so the parent converts and
    normalises the batch in three operations instead of three per image."""

    def build_augments(self, augments: Optional[List[Dict]]) -> None:
        self.augments = nn.ModuleList([MODELS.build(a) for a in augments or []])

    def forward(self, data: dict, training: bool = False) -> dict:
        inputs = data['inputs']
        if isinstance(inputs, (list, tuple)) and inputs and all(x.shape == inputs[0].shape for x in inputs):
            data = dict(data, inputs=torch.stack(list(inputs)))
        if not (training and len(self.augments)):
            return self.parent_forward(data, training)
        normalize, self._enable_normalize = self._enable_normalize, False
        try:
            out = self.parent_forward(data, training)
        finally:
            self._enable_normalize = normalize
        pixels, samples = out['inputs'].float(), out['data_samples']
        with torch.autocast(pixels.device.type, enabled=False):  # --amp: warp and colour in float32
            for augment in self.augments:
                pixels, samples = augment(pixels, samples)
        out['inputs'] = pixels.sub_(self.mean).div_(self.std) if normalize else pixels  # pixels: ours alone
        out['data_samples'] = samples
        return out

    def parent_forward(self, data: dict, training: bool) -> dict:
        """The parent preprocessor's ``forward`` (a subclass may take a cheaper path to the same result)."""
        return super().forward(data, training)
