"""Keras ``MobileNetV2`` (``keras.applications``, any ``alpha``, with or without top) -> sscma's MobileNetV2.

Sony AITRIOS' training spec starts transfer learning from ``source_keras_model``: a ``.h5`` / ``.keras`` file or
a SavedModel folder of a Keras MobileNetV2. Its weights map one to one onto
:class:`~sscma.models.backbones.MobileNetV2`:

* ``Conv2D`` kernels ``(H, W, in, out)`` -> ``(out, in, H, W)``; ``DepthwiseConv2D`` ``(H, W, C, 1)`` -> ``(C, 1, H, W)``.
* ``BatchNormalization`` gamma / beta / moving mean / moving variance -> weight / bias / running mean / var.
  Keras normalises with ``epsilon=1e-3``, PyTorch's BatchNorm with 1e-5: the difference is added to the running
  variance, so ``var + 1e-3`` under the square root is exactly what Keras computes (at inference; fine-tuning
  then continues with PyTorch's eps, a negligible change).
* Keras pads stride-2 convolutions like TensorFlow's ``'same'`` (one row/column at the bottom/right for even
  sizes; ``ZeroPadding2D(((0, 1), (0, 1)))`` before each stride-2 depthwise conv), PyTorch one on each side:
  the converted backbone sets ``tf_padding=True``, otherwise every feature map would be shifted by a pixel.
* Keras' MobileNetV2 expects RGB scaled to ``[-1, 1]`` (``preprocess_input``: ``x / 127.5 - 1``): the
  checkpoint's metadata carries ``mean = std = [127.5] * 3``, which ``tools/transfer_learn.py`` puts into the
  data preprocessor.
* The top (``GlobalAveragePooling2D`` + ``Dense`` ``predictions``) is dropped: a new head is trained.

The Keras file is read with ``tf_keras`` (Keras 2: ``.h5``, SavedModel, its ``.keras``) or Keras 3 (its
``.keras`` / ``.h5``), whichever loads it.
"""
import os.path as osp
import re
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from sscma.utils.errors import SSCMAError
from sscma.utils import optional_imports

KERAS_FILE_SUFFIXES = ('.h5', '.hdf5', '.keras')
KERAS_BN_EPS = 1e-3
TORCH_BN_EPS = 1e-5
SUPPORTED = ('a keras.applications MobileNetV2 (any alpha, with or without top) saved as .h5, .keras or a '
             'SavedModel folder')
EXPORT_REQUIREMENTS = 'requirements/export.txt'


class KerasModelError(SSCMAError):
    """A Keras model that cannot be read or is not a MobileNetV2."""


def is_keras_model(path: str) -> bool:
    """Whether ``path`` names a Keras model: a ``.h5`` / ``.hdf5`` / ``.keras`` file or a SavedModel folder."""
    return path.lower().endswith(KERAS_FILE_SUFFIXES) or osp.isfile(osp.join(path, 'saved_model.pb'))


def _loaders(path: str) -> List[str]:
    if osp.isdir(path):
        return ['tf_keras']
    return ['keras', 'tf_keras'] if path.lower().endswith('.keras') else ['tf_keras', 'keras']


def import_tensorflow(path: str = ''):
    """Import TensorFlow (quietly), or say in one line which requirements file brings it."""
    return optional_imports.import_tensorflow(
        KerasModelError, f'{path + ": " if path else ""}reading a Keras model needs TensorFlow; install it with'
        f' `pip install -r {EXPORT_REQUIREMENTS}` (tensorflow-cpu, tf_keras)')


def load_keras_model(path: str):
    """Load a Keras model without compiling it, with ``tf_keras`` or Keras 3 (see :func:`_loaders`)."""
    import_tensorflow(path)
    errors = []
    for name in _loaders(path):
        try:
            if name == 'tf_keras':
                import tf_keras
                return tf_keras.models.load_model(path, compile=False)
            import keras
            return keras.saving.load_model(path, compile=False)
        except ImportError as e:
            errors.append(f'{name}: not installed ({e})')
        except Exception as e:  # noqa: BLE001  (each Keras raises its own kinds for a foreign file)
            errors.append(f'{name}: {type(e).__name__}: {(str(e).strip().splitlines() or [""])[0][:160]}')
    raise KerasModelError(f'{path}: not a Keras model that tf_keras or Keras 3 can load ({"; ".join(errors)}); '
                          f'expected {SUPPORTED}')


def _layer_names(blocks: int = 17) -> List[Tuple[str, Optional[str], str]]:
    """``(keras conv layer, keras BN layer, sscma module prefix)`` of every conv in MobileNetV2's order."""
    names = [('Conv1', 'bn_Conv1', 'features.0.0')]
    names += [('expanded_conv_depthwise', 'expanded_conv_depthwise_BN', 'features.1.conv.0.0'),
              ('expanded_conv_project', 'expanded_conv_project_BN', 'features.1.conv.1')]
    for i in range(1, blocks):
        names += [(f'block_{i}_expand', f'block_{i}_expand_BN', f'features.{i + 1}.conv.0.0'),
                  (f'block_{i}_depthwise', f'block_{i}_depthwise_BN', f'features.{i + 1}.conv.1.0'),
                  (f'block_{i}_project', f'block_{i}_project_BN', f'features.{i + 1}.conv.2')]
    names.append(('Conv_1', 'Conv_1_bn', f'features.{blocks + 1}.0'))
    return names


def _bn_prefix(conv_prefix: str) -> str:
    """The BatchNorm after a conv: ``...conv.2`` (project conv) -> ``...conv.3``; ``X.0`` -> ``X.1``."""
    head, last = conv_prefix.rsplit('.', 1)
    return f'{head}.{int(last) + 1}'


def _weights(model) -> Dict[str, List[np.ndarray]]:
    return {layer.name: [np.asarray(w) for w in layer.get_weights()] for layer in model.layers}


def _describe(model) -> str:
    kinds = sorted({type(layer).__name__ for layer in model.layers})
    return f'{getattr(model, "name", "?")!r} ({len(model.layers)} layers: {", ".join(kinds[:6])}...)'


def _alpha_from_name(name: str) -> Optional[float]:
    m = re.match(r'mobilenetv2_(\d+(?:\.\d+)?)_', name or '')
    return float(m.group(1)) if m else None


def mobilenet_v2_widths(weights: Dict[str, List[np.ndarray]]) -> List:
    """The sscma ``channels`` list (stem, ``[hidden, out]`` per block, final conv) of a Keras MobileNetV2."""
    widths: List = [int(weights['Conv1'][0].shape[-1])]
    widths.append([int(weights['expanded_conv_depthwise'][0].shape[2]),
                   int(weights['expanded_conv_project'][0].shape[-1])])
    for i in range(1, 17):
        widths.append([int(weights[f'block_{i}_depthwise'][0].shape[2]), int(weights[f'block_{i}_project'][0].shape[-1])])
    widths.append(int(weights['Conv_1'][0].shape[-1]))
    return widths


def widen_factor_for(widths: List, name: str) -> Tuple[float, bool]:
    """The ``widen_factor`` whose nominal widths are ``widths`` (``True``), else the nearest one (``False``)."""
    from sscma.models.backbones.mobilenet_v2 import MobileNetV2
    candidates = [a for a in (_alpha_from_name(name), 0.35, 0.5, 0.75, 1.0, 1.3, 1.4) if a]
    for alpha in candidates:
        if MobileNetV2.nominal_channels(alpha) == widths:
            return alpha, True
    return candidates[0] if _alpha_from_name(name) else round(widths[0] / 32, 2), False


def convert_keras_mobilenet_v2(path: str, prefix: str = 'backbone.') -> Dict[str, Any]:
    """Read a Keras MobileNetV2 and return an mmengine checkpoint for sscma's MobileNetV2.

    Returns:
        dict: ``{'state_dict': {prefix + 'features.*': tensor}, 'meta': {...}}``; ``meta`` holds
        ``widen_factor``, ``tf_padding=True``, ``mean``/``std`` (Keras' ``[-1, 1]`` scaling), ``in_channels``,
        ``channels`` (only when they differ from ``widen_factor``'s), the dropped top layers and the source.

    Raises:
        KerasModelError: unreadable file, TensorFlow missing, or a model that is not a MobileNetV2.
    """
    model = load_keras_model(path)
    weights = _weights(model)
    names = _layer_names()
    missing = [n for conv, bn, _ in names for n in (conv, bn) if n not in weights]
    if missing:
        raise KerasModelError(f'{path}: Keras model {_describe(model)} is not a MobileNetV2 (no layer {missing[0]!r}); '
                              f'supported: {SUPPORTED}')
    state: Dict[str, torch.Tensor] = OrderedDict()
    for conv_name, bn_name, module in names:
        kernel = weights[conv_name][0]
        if 'depthwise' in conv_name:  # (H, W, C, 1) -> (C, 1, H, W)
            tensor = np.transpose(kernel, (2, 3, 0, 1))
        else:  # (H, W, in, out) -> (out, in, H, W)
            tensor = np.transpose(kernel, (3, 2, 0, 1))
        state[f'{prefix}{module}.weight'] = torch.from_numpy(np.ascontiguousarray(tensor, dtype=np.float32))
        layer = model.get_layer(bn_name)
        gamma, beta, mean, var = _bn_arrays(layer, weights[bn_name], path)
        eps = float(getattr(layer, 'epsilon', KERAS_BN_EPS))
        bn = _bn_prefix(module)
        state[f'{prefix}{bn}.weight'] = torch.from_numpy(gamma.astype(np.float32))
        state[f'{prefix}{bn}.bias'] = torch.from_numpy(beta.astype(np.float32))
        state[f'{prefix}{bn}.running_mean'] = torch.from_numpy(mean.astype(np.float32))
        # sqrt(var' + 1e-5) == sqrt(var + eps): Keras' eps folded into the variance
        state[f'{prefix}{bn}.running_var'] = torch.from_numpy((var + (eps - TORCH_BN_EPS)).astype(np.float32))
        state[f'{prefix}{bn}.num_batches_tracked'] = torch.tensor(0)
    widths = mobilenet_v2_widths(weights)
    alpha, nominal = widen_factor_for(widths, getattr(model, 'name', ''))
    in_channels = int(weights['Conv1'][0].shape[2])
    used = {n for conv, bn, _ in names for n in (conv, bn)}
    dropped = sorted(name for name, w in weights.items() if w and name not in used)
    meta = dict(arch='MobileNetV2', source=osp.abspath(path), source_format='SavedModel' if osp.isdir(path) else
                osp.splitext(path)[1].lstrip('.'), keras_model_name=getattr(model, 'name', ''), widen_factor=alpha,
                tf_padding=True, in_channels=in_channels, mean=[127.5] * in_channels, std=[127.5] * in_channels,
                dropped_keys=dropped, bn_eps_folded=f'keras eps {KERAS_BN_EPS:g} added to running_var minus torch '
                f'eps {TORCH_BN_EPS:g}', note='Keras MobileNetV2: RGB input scaled to [-1, 1]')
    if not nominal:
        meta['channels'] = widths
    _check_skips(model, weights, alpha, path)
    return dict(state_dict=state, meta=meta)


def _bn_arrays(layer, arrays: List[np.ndarray], path: str) -> Tuple[np.ndarray, ...]:
    """gamma, beta, moving mean, moving variance of a Keras BatchNormalization (``scale``/``center`` honoured)."""
    arrays = list(arrays)
    n = arrays[-1].shape[0]
    gamma = arrays.pop(0) if getattr(layer, 'scale', True) else np.ones(n, np.float32)
    beta = arrays.pop(0) if getattr(layer, 'center', True) else np.zeros(n, np.float32)
    if len(arrays) != 2:
        raise KerasModelError(f'{path}: BatchNormalization {layer.name!r} has {len(layer.get_weights())} weights; '
                              'expected gamma, beta, moving mean and moving variance')
    return gamma, beta, arrays[0], arrays[1]


def _check_skips(model, weights, alpha: float, path: str) -> None:
    """The Keras model adds a block's input where sscma's MobileNetV2 of ``alpha`` does (``block_N_add``)."""
    from sscma.models.backbones.mobilenet_v2 import MobileNetV2
    skips = MobileNetV2._skip_connections(MobileNetV2.nominal_channels(alpha))
    names = {layer.name for layer in model.layers}
    keras_skips = [False, 'expanded_conv_add' in names] + [f'block_{i}_add' in names for i in range(1, 17)]
    if skips[:len(keras_skips)] != keras_skips:
        raise KerasModelError(f'{path}: the skip connections of Keras model {model.name!r} differ from those of '
                              f'MobileNetV2(widen_factor={alpha}); supported: {SUPPORTED}')
