"""A Keras MobileNetV2 (random weights, built here) converted to sscma's MobileNetV2 gives the same features."""
import os.path as osp

import numpy as np
import pytest
import torch

from sscma.models.backbones import MobileNetV2
from sscma.models.utils.keras_mobilenet_v2 import (KerasModelError, convert_keras_mobilenet_v2, import_tensorflow,
                                                   is_keras_model)

pytest.importorskip('tensorflow')
import_tensorflow()  # triton first (it segfaults when loaded after TensorFlow), then TensorFlow
tf_keras = pytest.importorskip('tf_keras')

ALPHA, SIZE = 0.35, 96
# float32 through 52 conv/BN layers: Keras and PyTorch sum in different orders; measured 3.6e-7 (contiguous input:
# 5.7e-7) on features up to ~1.4
ATOL = 1e-4


def randomise(model, seed=0):
    """Random kernels and BatchNorm statistics (Keras initialises BN to the identity, which would hide errors)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        arrays = layer.get_weights()
        if not arrays:
            continue
        if type(layer).__name__ == 'BatchNormalization':
            gamma, beta, mean, var = arrays
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.1, beta.shape),
                               rng.normal(0, 0.1, mean.shape), rng.uniform(0.5, 2.0, var.shape)])
        else:
            layer.set_weights([rng.normal(0, np.sqrt(2.0 / np.prod(a.shape[:-1])), a.shape) for a in arrays])
    return model


@pytest.fixture(scope='module')
def keras_files(tmp_path_factory):
    root = tmp_path_factory.mktemp('keras')
    model = randomise(tf_keras.applications.MobileNetV2(input_shape=(SIZE, SIZE, 3), alpha=ALPHA, weights=None,
                                                        include_top=True, classes=5))
    files = dict(h5=str(root / 'mobilenet_v2.h5'), keras=str(root / 'mobilenet_v2.keras'))
    model.save(files['h5'])
    model.save(files['keras'])
    features = tf_keras.Model(model.input, model.get_layer('out_relu').output)
    x = np.random.default_rng(1).uniform(-1, 1, (2, SIZE, SIZE, 3)).astype(np.float32)
    return dict(files=files, x=x, reference=features(x).numpy(), root=root)


@pytest.mark.parametrize('kind', ['h5', 'keras'])
def test_converted_features_agree(keras_files, kind):
    path = keras_files['files'][kind]
    assert is_keras_model(path)
    ckpt = convert_keras_mobilenet_v2(path)
    meta = ckpt['meta']
    assert meta['widen_factor'] == ALPHA and meta['tf_padding'] and 'channels' not in meta
    assert meta['mean'] == [127.5] * 3 and meta['std'] == [127.5] * 3
    assert meta['dropped_keys'] == ['predictions']  # the top
    backbone = MobileNetV2(widen_factor=ALPHA, out_indices=(7, ), tf_padding=True).eval()
    backbone.load_state_dict({k[len('backbone.'):]: v for k, v in ckpt['state_dict'].items()}, strict=True)
    x = torch.from_numpy(keras_files['x']).permute(0, 3, 1, 2)
    with torch.no_grad():
        out = backbone(x)[0]
    diff = np.abs(out.permute(0, 2, 3, 1).numpy() - keras_files['reference']).max()
    assert diff < ATOL, diff
    # symmetric padding (PyTorch's default) shifts every stride-2 map by a pixel: measured ~1e-3 here, more
    # than 1000x the tf_padding difference (why the option exists)
    plain = MobileNetV2(widen_factor=ALPHA, out_indices=(7, )).eval()
    plain.load_state_dict(backbone.state_dict(), strict=True)
    with torch.no_grad():
        plain_diff = np.abs(plain(x)[0].permute(0, 2, 3, 1).numpy() - keras_files['reference']).max()
    print(f'max abs diff to Keras: tf_padding {diff:.2e}, symmetric padding {plain_diff:.2e}')
    assert plain_diff > 100 * max(diff, 1e-7)


def test_not_a_mobilenet_v2_names_what_is_supported(tmp_path):
    inp = tf_keras.Input((32, 32, 3))
    other = tf_keras.Model(inp, tf_keras.layers.Dense(2)(tf_keras.layers.GlobalAveragePooling2D()(
        tf_keras.layers.Conv2D(8, 3, name='conv')(inp))), name='tiny_cnn')
    path = str(tmp_path / 'tiny.h5')
    other.save(path)
    with pytest.raises(KerasModelError) as info:
        convert_keras_mobilenet_v2(path)
    message = str(info.value)
    assert len(message.splitlines()) == 1
    assert "'tiny_cnn'" in message and 'is not a MobileNetV2' in message and 'keras.applications MobileNetV2' in message


def test_unreadable_file_is_one_line(tmp_path):
    path = tmp_path / 'broken.h5'
    path.write_bytes(b'\x89HDF not really')
    with pytest.raises(KerasModelError) as info:
        convert_keras_mobilenet_v2(str(path))
    assert len(str(info.value).splitlines()) == 1 and 'not a Keras model that tf_keras or Keras 3 can load' in str(
        info.value)


def test_missing_tensorflow_names_the_requirements_file(monkeypatch, tmp_path):
    import builtins
    real_import = builtins.__import__

    def no_tf(name, *args, **kwargs):
        if name == 'tensorflow':
            raise ImportError('No module named tensorflow')
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, '__import__', no_tf)
    with pytest.raises(KerasModelError, match=r'needs TensorFlow; install it with `pip install -r '
                       r'requirements/export.txt`'):
        convert_keras_mobilenet_v2(osp.join(str(tmp_path), 'model.h5'))
