"""The weight files packaged with sscma (``sscma/models/weights``): which MobileNetV2 widths have ImageNet features.

Here, below the models, so that config checks can ask without importing them.
"""
import glob
import os.path as osp
from typing import Dict

WEIGHTS_DIR = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'models', 'weights')


def distilled_weights() -> Dict[float, str]:
    """The packaged distilled MobileNetV2 files (``mobilenet_v2_<width>_distilled.pth``), by widen factor."""
    found = {}
    for path in glob.glob(osp.join(WEIGHTS_DIR, 'mobilenet_v2_*_distilled.pth')):
        try:
            found[float(osp.basename(path).split('_')[2])] = path
        except ValueError:
            continue
    return dict(sorted(found.items()))


def has_imagenet_weights(widen_factor: float) -> bool:
    """Whether a MobileNetV2 of ``widen_factor`` has ImageNet weights: torchvision's at 1.0, or a packaged file."""
    return widen_factor == 1.0 or widen_factor in distilled_weights()
