"""TensorFlow Lite Micro as a consumer of our int8 files: exact arena, outputs next to LiteRT's, the C source
artefact a firmware compiles, and the fit verdict against board profiles."""
import os.path as osp
import subprocess

import numpy as np
import pytest

from sscma.deploy.tflm import tflm_unavailable

pytestmark = pytest.mark.skipif(tflm_unavailable() is not None, reason=str(tflm_unavailable()))


@pytest.fixture(scope='module')
def int8_tflite(tmp_path_factory):
    """A small full-integer conv net (24x32x3 input, as our exports: int8 in and out)."""
    from sscma.deploy.tflite import _import_tensorflow
    tf = _import_tensorflow()
    inp = tf.keras.Input((24, 32, 3), batch_size=1)
    x = tf.keras.layers.Conv2D(8, 3, strides=2, padding='same', activation='relu')(inp)
    x = tf.keras.layers.DepthwiseConv2D(3, padding='same', activation='relu')(x)
    out = tf.keras.layers.Conv2D(3, 1, activation='softmax')(x)
    model = tf.keras.Model(inp, out)
    rng = np.random.default_rng(0)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([rng.random((1, 24, 32, 3), np.float32) * 255] for _ in range(8))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    path = str(tmp_path_factory.mktemp('tflm') / 'net_int8.tflite')
    open(path, 'wb').write(converter.convert())
    return path


def test_arena_is_exact_and_outputs_follow_litert(int8_tflite):
    from sscma.deploy.tflite import TFLiteBackend
    from sscma.deploy.tflm import TFLMBackend, measure_arena
    from sscma.utils import ExportError
    arena = measure_arena(int8_tflite)
    assert arena['arena_bytes'] == arena['head_bytes'] + arena['tail_bytes'] > 0
    tflm = TFLMBackend(int8_tflite, arena_size=arena['arena_bytes'])  # exactly that much is enough
    assert tflm.input_shape == [1, 3, 24, 32]
    with pytest.raises(ExportError, match='Failed to resize buffer'):
        TFLMBackend(int8_tflite, arena_size=arena['arena_bytes'] - arena['head_bytes'] // 2)
    x = (np.random.default_rng(1).random((2, 3, 24, 32)) * 255).astype(np.float32)
    ours, litert = tflm(x), TFLiteBackend(int8_tflite)(x)
    assert ours.shape == litert.shape == (2, 3, 12, 16)
    # the same int8 model, run by other kernels (TFLM's reference ones vs XNNPACK): not bit-identical (the
    # default FOMO differs by up to 25 int8 steps in a few cells), but the same decisions almost everywhere
    assert np.abs(ours - litert).mean() < 0.01
    assert (ours.argmax(1) == litert.argmax(1)).mean() > 0.95


def test_c_source_compiles_and_holds_the_file(int8_tflite, tmp_path):
    from sscma.deploy.c_source import write_c_model
    data = open(int8_tflite, 'rb').read()
    detail = dict(dtype='int8', shape=(1, 24, 32, 3), scale=1.0, zero_point=-128)
    files = write_c_model(int8_tflite, str(tmp_path), '2net-int8', 12345, ['CONV_2D', 'DEPTHWISE_CONV_2D'],
                          detail, dict(detail, shape=(1, 12, 16, 3), scale=1 / 256))
    header = open(files['header']).read()
    assert '#define MODEL_2NET_INT8_TENSOR_ARENA_SIZE 12345' in header and 'resolver.AddDepthwiseConv2d();' in header
    obj = str(tmp_path / 'model.o')
    proc = subprocess.run(['cc', '-c', files['source'], '-o', obj, '-std=c++17', '-Wall', '-Werror'],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    # the array's bytes are the file's: read them back out of the object file's .rodata
    dump = subprocess.run(['objcopy', '-O', 'binary', '--only-section=.rodata', obj, str(tmp_path / 'ro.bin')],
                          capture_output=True, text=True)
    assert dump.returncode == 0, dump.stderr
    assert data in open(tmp_path / 'ro.bin', 'rb').read()
    assert f'= {len(data)};' in open(files['source']).read()


def test_fit_verdicts_name_the_numbers_and_the_lever():
    from sscma.deploy.devices import DEVICES, device_table, fit_verdict, get_device
    from sscma.utils import ExportError
    small = fit_verdict(get_device('grove_vision_ai_v2'), 244000, 50376, (96, 96))
    assert small['fits'] and small['line'].startswith('grove_vision_ai_v2 (Seeed Studio Grove Vision AI V2): FITS')
    big = fit_verdict(get_device('nano33_ble_sense'), 244000, 50376, (96, 96))
    assert not big['fits'] and 'arena 238.3 KiB > 192 KiB' in big['line']
    assert 'input 96x96 -> 80x80 saves about' in big['lever']
    assert not fit_verdict(get_device('pico'), 1000, 5 << 20, (96, 96))['fits']
    assert 'no kernel for FOO' in fit_verdict(get_device('pico'), 1000, 1000, (96, 96), ['FOO'])['line']
    assert all(f'`{name}`' in device_table() for name in DEVICES)
    with pytest.raises(ExportError, match='unknown board; choose from xiao_esp32s3'):
        get_device('esp8266')
