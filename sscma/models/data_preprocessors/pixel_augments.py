"""The part the sscma data preprocessors share: batch augmentations on the 0-255 pixels, then one normalisation."""
from typing import Dict, List, Optional

import torch
from torch import nn

from sscma.registry import MODELS


class PixelAugmentsMixin:
    """Put before an mmengine ``ImgDataPreprocessor`` subclass (mmdet's, mmpretrain's): in training, the
    ``augments`` (``BatchAffine``, ... from ``sscma.models.data_preprocessors``) run in order on
    the stacked images in 0-255 pixels (after the parent's channel conversion, batch-level steps and padding,
    with its normalisation turned off), then the images are normalised once. Without augments, or in
    evaluation, it is the parent preprocessor. Equal-size images are stacked first, so the parent converts and
    normalises the batch in three operations instead of three per image; a stacked 3-channel batch has its
    BGR <-> RGB conversion done here as one ``flip`` (0.015 ms for 16 96x96 images, where the parent's
    ``[:, [2, 1, 0]]`` gather took 0.3 ms)."""

    def build_augments(self, augments: Optional[List[Dict]]) -> None:
        self.augments = nn.ModuleList([MODELS.build(a) for a in augments or []])

    def forward(self, data: dict, training: bool = False) -> dict:
        inputs = data['inputs']
        overrides = {}  # parent flags changed for this call, restored after it
        if isinstance(inputs, (list, tuple)) and inputs and all(x.shape == inputs[0].shape for x in inputs):
            inputs = torch.stack(list(inputs))
            # mmengine's flag (mmpretrain flips by itself and has none)
            if getattr(self, '_channel_conversion', False) and inputs.dim() == 4 and inputs.shape[1] == 3:
                inputs, overrides['_channel_conversion'] = inputs.flip(1), False
            data = dict(data, inputs=inputs)
        augment = training and len(self.augments)
        normalize = self._enable_normalize
        if augment:
            overrides['_enable_normalize'] = False  # normalised below, once, after the augments
        saved = {name: getattr(self, name) for name in overrides}
        for name, value in overrides.items():
            setattr(self, name, value)
        try:
            out = self.parent_forward(data, training)
        finally:
            for name, value in saved.items():
                setattr(self, name, value)
        if not augment:
            return out
        pixels, samples = out['inputs'].float(), out['data_samples']
        with torch.autocast(pixels.device.type, enabled=False):  # --amp: warp and colour in float32
            for step in self.augments:
                pixels, samples = step(pixels, samples)
        out['inputs'] = pixels.sub_(self.mean).div_(self.std) if normalize else pixels  # pixels: ours alone
        out['data_samples'] = samples
        return out

    def parent_forward(self, data: dict, training: bool) -> dict:
        """The parent preprocessor's ``forward`` (a subclass may take a cheaper path to the same result)."""
        return super().forward(data, training)
