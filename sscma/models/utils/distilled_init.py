"""``init_cfg=dict(type='DistilledMobileNetV2')``: packaged ImageNet-distilled weights for narrow MobileNetV2s."""
from typing import Optional

import torch

from sscma.models.utils.imagenet_init import load_fitting, read_weights
from sscma.registry import WEIGHT_INITIALIZERS
from sscma.utils.packaged_weights import distilled_weights

STEM = 'features.0.0.weight'


@WEIGHT_INITIALIZERS.register_module()
class DistilledMobileNetV2:
    """Load the packaged MobileNetV2 weights distilled from ImageNet MobileNetV2-1.0 at the backbone's width.

    The files (``sscma/models/weights/mobilenet_v2_<width>_distilled.pth``) are made by
    ``tools/distill_mobilenet_v2.py``; at width 1.0 torchvision's ImageNet checkpoint itself is loaded
    (:mod:`sscma.models.pretrained`). The distilled files expect RGB pixels / 255 (FOMO's preprocessing; a
    BatchNorm after the stem absorbs other scalings while fine-tuning). Tensors are matched by name and shape,
    so a backbone cut early (FOMO's ``out_indices=(2,)``) takes the layers it has; a grayscale stem
    (``in_channels=1``) takes the sum of the RGB filters. Layers of other shapes (``expand_ratios``, pruned
    ``channels``) keep their initialisation and are named in the log; a backbone that takes nothing is an error.

    Args:
        checkpoint (str, optional): Another file written by the tool; default: the packaged one of the width.
    """

    def __init__(self, checkpoint: Optional[str] = None) -> None:
        self.checkpoint = checkpoint

    def _path(self, module: torch.nn.Module) -> str:
        from sscma.utils.errors import ConfigError
        if self.checkpoint:
            return self.checkpoint
        width = getattr(module, 'widen_factor', None)
        if width == 1.0:  # the teacher itself
            from sscma.models.pretrained import find_torchvision_mobilenet_v2
            return find_torchvision_mobilenet_v2()
        available = distilled_weights()
        if width not in available:
            raise ConfigError(f'{type(module).__name__}(widen_factor={width}): no distilled weights of that width '
                              f'(packaged: {sorted(available)}, and 1.0: torchvision\'s); set init="scratch" or '
                              'pick one of them')
        return available[width]

    def __call__(self, module: torch.nn.Module) -> None:
        path = self._path(module)
        state = read_weights(path)
        stem = module.state_dict().get(STEM)
        if stem is not None and STEM in state and stem.shape[1] == 1 and state[STEM].shape[1] == 3:
            state = dict(state, **{STEM: state[STEM].float().sum(dim=1, keepdim=True)})  # gray = R = G = B
        load_fitting(module, path, state, 'ImageNet-distilled', True, 'set init="scratch" for random weights')

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(checkpoint={self.checkpoint})'
