"""What a backbone returns: channels and stride of each output map, declared once (timm's ``feature_info``).

A backbone that lets heads size themselves has a ``feature_info`` attribute (or property): one
:class:`FeatureInfo` per returned map, in the order ``forward`` returns them. Detectors read it through
:func:`backbone_feature_info` only when the head's config leaves ``in_channels`` / ``stride`` unset; a
backbone without it (an mmdet or mmpretrain one) needs them written in the config.
"""
from typing import List, NamedTuple

from torch import nn

from sscma.utils.errors import ConfigError


class FeatureInfo(NamedTuple):
    """One returned feature map: its ``channels`` and its ``stride`` (input pixels per cell)."""
    channels: int
    stride: int


def backbone_feature_info(backbone: nn.Module, needed: str) -> List[FeatureInfo]:
    """``backbone.feature_info``, or a :class:`ConfigError` saying which head argument to set instead."""
    try:
        info = backbone.feature_info
    except AttributeError:
        raise ConfigError(f'{type(backbone).__name__} does not declare feature_info (channels and stride of each '
                          f'output map): set the head\'s {needed} in the config') from None
    if not info or not all(isinstance(i, FeatureInfo) for i in info):
        raise ConfigError(f'{type(backbone).__name__}.feature_info must be a non-empty list of FeatureInfo(channels, '
                          f'stride), got {info!r}')
    return list(info)
