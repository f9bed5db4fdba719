"""TensorFlow Lite Micro as a consumer of our int8 files: exact arena, outputs next to LiteRT's, the C source
artefact a firmware compiles, and the fit verdict against board profiles."""
import os.path as osp
import re
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
                          detail, dict(detail, shape=(1, 12, 16, 3), scale=1 / 256),
                          dict(classes=['a', 'b'], output=dict(constants=dict(output_stride=2, score_threshold=0.35))))
    header = open(files['header']).read()
    assert '#define MODEL_2NET_INT8_TENSOR_ARENA_SIZE 12345' in header and 'resolver.AddDepthwiseConv2d();' in header
    # what the firmware needs to read the output, beside its shape
    assert '#define MODEL_2NET_INT8_OUTPUT_STRIDE 2\n' in header
    assert '#define MODEL_2NET_INT8_SCORE_THRESHOLD 0.35f\n' in header
    assert '#define MODEL_2NET_INT8_INPUT_SCALE 1.0f\n' in header  # "1f" would be no C literal
    obj = str(tmp_path / 'model.o')
    proc = subprocess.run(['cc', '-c', files['source'], '-o', obj, '-std=c++17', '-Wall', '-Werror'],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    use = tmp_path / 'use.cc'  # every #define of the header is an expression firmware can use
    defines = re.findall(r'^#define (MODEL_2NET_INT8_\w+) ', header, re.M)
    use.write_text(f'#include "{osp.basename(files["header"])}"\ndouble values[] = {{{", ".join(defines)}}};\n')
    proc = subprocess.run(['cc', '-c', str(use), '-I', str(tmp_path), '-o', str(tmp_path / 'use.o'), '-std=c++17',
                           '-Wall', '-Werror'], capture_output=True, text=True)
    assert proc.returncode == 0 and len(defines) == 8, (defines, proc.stderr)
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


def test_export_tflm_target_reports_arena_and_verdicts_and_test_runs_tflm(tmp_path, roboflow_root):
    """tools/export.py --targets tflite tflm on a FOMO (112x84 files, 64x64 input): the C source, its exact arena
    and verdicts in the report, --device failing for a board it does not fit, and tools/test.py --runtime tflm
    on the int8 .tflite giving the metric the report gave the .cc (the same bytes, the same runtime)."""
    import json

    from tests.test_deploy.test_export import FOMO, fomo_opts, save_random_model
    from tests.test_tools.test_train_test import run_tool
    ckpt = str(tmp_path / 'fomo.pth')
    save_random_model(FOMO, fomo_opts(roboflow_root), ckpt)
    work = str(tmp_path / 'export')
    proc = run_tool('export.py', FOMO, ckpt, '--targets', 'tflite', 'tflm', '--precisions', 'int8', '--work-dir',
                    work, '--latency-runs', '2', '--device', 'pico', 'xiao_esp32s3', '--cfg-options',
                    *fomo_opts(roboflow_root), check=False)
    report = json.load(open(osp.join(work, 'export_report.json')))
    entry = next(e for e in report['exports'] if e['target'] == 'tflm')
    assert entry['file'].endswith('fomo_int8_model_data.cc') and osp.isfile(entry['tflm']['header'])
    assert entry['tflm']['arena_bytes'] > 0 and 'CONV_2D' in entry['tflm']['ops']
    assert [v['device'] for v in entry['tflm']['devices']] == ['pico', 'xiao_esp32s3']
    assert all(v['fits'] for v in entry['tflm']['devices'])  # a 64x64 FOMO-0.1 fits both
    assert proc.returncode == 0, proc.stderr[-2000:]
    md = open(osp.join(work, 'export_report.md')).read()
    assert f'tensor arena **{entry["tflm"]["arena_bytes"]:,} bytes**' in md and 'pico (Raspberry Pi Pico): FITS' in md
    tflite = osp.join(work, 'fomo_int8.tflite')
    run_tool('test.py', FOMO, tflite, '--runtime', 'tflm', '--work-dir', str(tmp_path / 'test'), '--cfg-options',
             *fomo_opts(roboflow_root))
    test = json.load(open(tmp_path / 'test' / 'results.json'))['test']
    assert test['fomo/f1'] == pytest.approx(entry['metrics']['fomo/f1'])
    assert (test['fomo/tp'], test['fomo/fp']) == (entry['metrics']['fomo/tp'], entry['metrics']['fomo/fp'])


def test_device_list_and_unknown_board(capsys, tmp_path):
    from tests.test_deploy.test_export import FOMO, run_inprocess, tool_error
    assert run_inprocess('export.py', FOMO, 'x.pth', '--device', 'list') is None
    assert '| `grove_vision_ai_v2` | Seeed Studio Grove Vision AI V2 |' in capsys.readouterr().out
    ckpt = tmp_path / 'x.pth'
    ckpt.write_bytes(b'')
    assert 'unknown board; choose from' in tool_error('export.py', FOMO, str(ckpt), '--device', 'esp8266')


def test_tf_padding_keeps_pad_copies_out_of_the_int8_arena(tmp_path):
    """PyTorch pads a stride-2 conv on both sides; TFLite's 'same' pads bottom/right only, so onnx2tf writes a
    padded copy (PAD) before each such conv, and the arena holds both. ``tf_padding`` pads like TFLite: the PAD
    ops go, the arena shrinks, and the float TFLite file still computes what the PyTorch model does."""
    import torch
    from sscma.deploy.targets.onnx import export_onnx_fp32
    from sscma.deploy.tflite import TFLiteBackend, export_tflite, onnx_to_saved_model
    from sscma.deploy.tflm import measure_arena
    from sscma.models.backbones.mobilenet_v2 import MobileNetV2

    class Scaled(torch.nn.Module):
        def __init__(self, backbone):
            super().__init__()
            self.backbone = backbone

        def forward(self, x):
            return self.backbone(x / 255.0)[0]

    torch.manual_seed(0)
    hw = (48, 64)
    plain = MobileNetV2(0.35, out_indices=(1, )).eval()
    same = MobileNetV2(0.35, out_indices=(1, ), tf_padding=True).eval()
    same.load_state_dict(plain.state_dict())
    x = (np.random.default_rng(0).random((4, 3, *hw)) * 255).astype(np.float32)
    found = {}
    for name, backbone in (('plain', plain), ('same', same)):
        onnx_path, net = str(tmp_path / f'{name}.onnx'), Scaled(backbone).eval()
        export_onnx_fp32(net, (3, *hw), onnx_path, dynamic_batch=False)
        saved = onnx_to_saved_model(onnx_path, str(tmp_path / name), x.transpose(0, 2, 3, 1))
        info = export_tflite(saved, str(tmp_path / f'{name}_int8.tflite'), 'int8', [x.transpose(0, 2, 3, 1)])
        found[name] = dict(ops=info['ops'], arena=measure_arena(str(tmp_path / f'{name}_int8.tflite'))['arena_bytes'])
        if name == 'same':
            export_tflite(saved, str(tmp_path / 'same_fp32.tflite'), 'float32')
            with torch.no_grad():
                expected = net(torch.from_numpy(x)).numpy()
            assert np.abs(TFLiteBackend(str(tmp_path / 'same_fp32.tflite'))(x) - expected).max() < 1e-3
    assert 'PAD' in found['plain']['ops'] and 'PAD' not in found['same']['ops']
    assert found['same']['arena'] < 0.8 * found['plain']['arena']  # 51,168 against 84,864 bytes
