"""tools/export.py and evaluation of exported models (tiny FOMO / classifier, CPU)."""
import json
import os
import os.path as osp
import runpy
import sys

import cv2
import numpy as np
import pytest
import torch

from sscma.utils import load_config, register_all_modules
from tests.test_tools.test_train_test import run_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FOMO = 'configs/fomo/fomo_mobnetv2.py'
CLS = 'configs/classification/mobilenetv2_0.35_digits.py'


def fomo_opts(root):
    return [f'data_root={root}', 'imgsz=(64,64)', 'workers=0', 'batch=4', 'model.backbone.widen_factor=0.1']


def as_dict(opts):
    from mmengine.config import DictAction
    out = {}
    for o in opts:
        k, v = o.split('=', 1)
        out[k] = DictAction._parse_iterable(v)
    return out


def run_inprocess(tool, *args):
    """Run ``python tools/<tool> ARGS`` in this process (no interpreter start-up); return its exit message."""
    argv, cwd = sys.argv, os.getcwd()
    sys.argv = [tool, *args]
    os.chdir(REPO)
    try:
        runpy.run_path(osp.join(REPO, 'tools', tool), run_name='__main__')
    except SystemExit as e:
        return e.code
    finally:
        sys.argv = argv
        os.chdir(cwd)
    return None


def tool_error(tool, *args):
    """The ``error: ...`` line a tool exits with."""
    message = run_inprocess(tool, *args)
    assert isinstance(message, str), f'{tool} {args} did not fail with a message ({message!r})'
    return message


def save_random_model(config, options, path, size=64, channels=3, classes=None):
    """A randomly initialised model whose BatchNorm statistics are set from random images; ``classes``: the
    class names its meta carries, as training writes them (none by default, as in an old checkpoint).

    Without that, activations shrink layer after layer into float32 denormals (slow on CPU, and every
    output would be ~0, which makes parity and metrics meaningless).
    """
    register_all_modules()
    cfg = load_config(osp.join(REPO, config), as_dict(options))
    from sscma.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: one batch sets the statistics
    model.train()
    with torch.no_grad():
        model(torch.rand(8, channels, size, size), mode="tensor")
    for m in bns:
        m.momentum = 0.1
    meta = dict(dataset_meta=dict(classes=tuple(classes))) if classes else {}
    torch.save({'state_dict': model.state_dict(), 'meta': meta}, path)
    return model.eval(), cfg


@pytest.fixture(scope='module')
def fomo_ckpt(roboflow_root, tmp_path_factory):
    path = str(tmp_path_factory.mktemp('fomo_ckpt') / 'fomo.pth')
    model, cfg = save_random_model(FOMO, fomo_opts(roboflow_root), path)
    return path, model


@pytest.fixture(scope='module')
def fomo_export(fomo_ckpt, roboflow_root, tmp_path_factory):
    ckpt, _ = fomo_ckpt
    work = str(tmp_path_factory.mktemp('fomo_export'))
    run_tool('export.py', FOMO, ckpt, '--precisions', 'float32', 'float16', 'int8', '--calib-batches', '2', '--latency-runs', '3', '--work-dir', work, '--cfg-options',
             *fomo_opts(roboflow_root))
    with open(osp.join(work, 'export_report.json')) as f:
        report = json.load(f)
    return work, report, {(e['target'], e['precision']): e for e in report['exports']}


def test_export_writes_files_and_report(fomo_export):
    work, report, exports = fomo_export
    assert set(exports) == {('onnx', 'float32'), ('onnx', 'float16'), ('onnx', 'int8'), ('torchscript', 'float32'),
                            ('torchscript', 'float16'), ('tflite', 'float32'), ('tflite', 'float16'),
                            ('tflite', 'int8'), ('vela', 'int8'), ('tflm', 'int8')}
    assert [(s['target'], s['precision']) for s in report['skipped']] == [
        ('torchscript', 'int8'), ('vela', 'float32'), ('vela', 'float16'), ('tflm', 'float32'), ('tflm', 'float16')]
    for (target, precision), e in exports.items():
        ext = {'onnx': '.onnx', 'torchscript': '.pt', 'tflite': '.tflite', 'vela': '_vela.tflite',
               'tflm': '_model_data.cc'}[target]
        assert e['file'] == osp.join(work, f'fomo_{precision}{ext}') and osp.getsize(e['file']) == e['size_bytes']
        if target != 'vela':
            assert e['latency']['median_ms'] > 0 and e['latency']['threads'] == 1
    assert report['input']['shape'] == [1, 3, 64, 64] and report['input']['channel_order'] == 'RGB'
    assert report['output']['shape'] == [1, 3, 8, 8]
    assert report['params'] > 0 and report['macs'] > 0
    md = open(osp.join(work, 'export_report.md')).read()
    assert 'fomo_int8.onnx' in md and 'fomo/f1' in md


def test_float32_parity(fomo_export):
    _, _, exports = fomo_export
    for target in ('onnx', 'torchscript', 'tflite'):
        p = exports[(target, 'float32')]['parity']
        assert p['images'] == 4 and p['max_abs_diff'] <= 1e-4 and p['argmax_agreement'] == 1.0, (target, p)


def test_onnx_takes_raw_pixels(fomo_export, fomo_ckpt, roboflow_root):
    """What a device does: read the image, RGB, resize, feed 0..255 floats; the graph normalises itself."""
    import onnxruntime as ort
    _, _, exports = fomo_export
    _, model = fomo_ckpt
    folder = osp.join(roboflow_root, 'valid')
    names = sorted(f for f in os.listdir(folder) if f.endswith('.jpg'))
    imgs = [cv2.resize(cv2.imread(osp.join(folder, n))[:, :, ::-1], (64, 64)) for n in names]
    raw = np.stack(imgs).transpose(0, 3, 1, 2).astype(np.float32)
    sess = ort.InferenceSession(exports[('onnx', 'float32')]['file'], providers=['CPUExecutionProvider'])
    out = sess.run(None, {'images': raw})[0]
    with torch.no_grad():
        ref = model(torch.from_numpy(raw) / 255.0, mode='tensor').numpy()
    assert out.shape == (len(names), 3, 8, 8)
    assert np.abs(out - ref).max() <= 1e-4


def test_float16_and_int8(fomo_export):
    import onnx
    import onnxruntime as ort
    _, report, exports = fomo_export
    fp32, fp16, int8 = (exports[('onnx', p)] for p in ('float32', 'float16', 'int8'))
    assert fp16['size_bytes'] < fp32['size_bytes']
    assert fp16['parity']['max_abs_diff'] < 1e-2 and fp16['parity']['argmax_agreement'] >= 0.99
    graph = onnx.load(int8['file']).graph
    ops = [n.op_type for n in graph.node]
    assert 'QuantizeLinear' in ops and 'DequantizeLinear' in ops
    assert any(t.data_type == onnx.TensorProto.INT8 for t in graph.initializer)  # weights stored as int8
    assert int8['quantization']['quantize_linear_nodes'] == ops.count('QuantizeLinear')
    # an untrained model has near-uniform cell probabilities, so int8 flips many near-ties; trained models
    # agree on ~99 % of cells (see the report of a real run). Chance level here is 1/3.
    assert int8['parity']['argmax_agreement'] >= 0.5 and int8['parity']['mean_abs_diff'] < 0.1
    sess = ort.InferenceSession(int8['file'], providers=['CPUExecutionProvider'])
    out = sess.run(None, {'images': np.full((1, 3, 64, 64), 128, np.float32)})[0]
    assert out.shape == (1, 3, 8, 8) and np.isfinite(out).all()
    # every exported file was evaluated with the config's metric, next to the float model
    keys = set(report['float_metrics'])
    assert report['float_metrics']['fomo/fp'] > 0  # the metric is not trivially zero
    for e in exports.values():
        assert e['target'] == 'vela' or set(e['metrics']) == keys
    for target in ('onnx', 'torchscript', 'tflite'):
        assert exports[(target, 'float32')]['metrics'] == report['float_metrics']


def test_tflite_int8_for_microcontrollers(fomo_export):
    """Full-integer TFLite: int8 in and out, raw pixels minus 128 as input, NHWC, and a vela build of it."""
    from ai_edge_litert.interpreter import Interpreter
    _, report, exports = fomo_export
    e = exports[('tflite', 'int8')]
    info = e['tflite']
    assert info['input']['dtype'] == 'int8' and info['output']['dtype'] == 'int8'
    assert info['input']['shape'] == [1, 64, 64, 3] and info['output']['shape'] == [1, 8, 8, 3]
    assert abs(info['input']['scale'] - 1.0) < 0.01 and info['input']['zero_point'] == -128  # 0..255 -> -128..127
    assert info['calibration_images'] >= 4 and 'CONV_2D' in info['ops'] and 'DELEGATE' not in info['ops']
    # activation RAM: at least the int8 input plus the first conv output (16 channels at stride 2) live at once
    assert 64 * 64 * 3 + 32 * 32 * 4 <= info['peak_activation_bytes'] < 10 * 64 * 64 * 32
    assert e['size_bytes'] < exports[('tflite', 'float32')]['size_bytes']
    interpreter = Interpreter(model_path=e['file'])
    interpreter.allocate_tensors()
    (inp, ), (out, ) = interpreter.get_input_details(), interpreter.get_output_details()
    interpreter.set_tensor(inp['index'], np.zeros((1, 64, 64, 3), np.int8))
    interpreter.invoke()
    probs = (interpreter.get_tensor(out['index']).astype(np.float32) - out['quantization'][1]) * out['quantization'][0]
    assert np.allclose(probs.sum(-1), 1.0, atol=0.05)  # softmax over background + classes survived int8
    assert e['parity']['argmax_agreement'] >= 0.5 and e['parity']['mean_abs_diff'] < 0.1
    v = exports[('vela', 'int8')]['vela']
    assert v['accelerator'] == 'Ethos_U55_128' and v['npu_ops'] > 0 and v['cpu_ops'] == 0
    assert v['inference_ms'] > 0 and v['sram_kib'] > 0 and v['macs'] > 0
    md = open(report['report_files']['markdown']).read()
    assert 'Microcontroller / NPU budget' in md and 'fomo_int8_vela.tflite' in md


def test_test_tool_on_tflite_and_vela(fomo_export, roboflow_root, tmp_path):
    _, _, exports = fomo_export
    work = str(tmp_path / 'tflite')
    assert run_inprocess('test.py', FOMO, exports[('tflite', 'int8')]['file'], '--work-dir', work,
                         '--cfg-options', *fomo_opts(roboflow_root)) in (None, 0)
    with open(osp.join(work, 'results.json')) as f:
        assert json.load(f)['test'] == exports[('tflite', 'int8')]['metrics']
    line = tool_error('test.py', FOMO, exports[('vela', 'int8')]['file'], '--work-dir', str(tmp_path / 'vela'),
                      '--cfg-options', *fomo_opts(roboflow_root))
    assert 'compiled by vela for an Ethos-U NPU and runs only there' in line, line


def test_test_tool_on_exported_model(fomo_export, fomo_ckpt, roboflow_root, tmp_path):
    _, report, exports = fomo_export
    ckpt, _ = fomo_ckpt
    results = {}
    for name, path in (('pth', ckpt), ('onnx', exports[('onnx', 'float32')]['file'])):
        work = str(tmp_path / name)
        args = ['test.py', FOMO, path, '--work-dir', work, '--cfg-options', *fomo_opts(roboflow_root)]
        if name == 'onnx':  # as a user runs it
            run_tool(*args)
        else:  # the checkpoint run is covered by tests/test_tools; in-process saves an interpreter start
            assert run_inprocess(*args) in (None, 0)
        with open(osp.join(work, 'results.json')) as f:
            results[name] = json.load(f)
    assert results['onnx']['test'] == results['pth']['test'] == report['float_metrics']
    assert results['onnx']['test_checkpoint'] == exports[('onnx', 'float32')]['file']


def test_backend_model_torchscript_and_int8(fomo_export, roboflow_root):
    """The BackendModel behind tools/test.py, in-process, for TorchScript and the fixed-batch int8 graph."""
    from sscma.apis import prepare_test_config
    from sscma.deploy.measures import evaluate
    from sscma.registry import MODELS
    _, _, exports = fomo_export
    for key in (('torchscript', 'float32'), ('onnx', 'int8')):
        cfg = prepare_test_config(osp.join(REPO, FOMO), exports[key]['file'], cfg_options=as_dict(
            fomo_opts(roboflow_root)))
        assert cfg.model.type == 'BackendModel' and cfg.load_from is None
        metrics = evaluate(MODELS.build(cfg.model), cfg, 'test')
        assert metrics == exports[key]['metrics']


def test_classifier_export_and_evaluation(folder_root, tmp_path):
    from sscma.deploy import export_model
    opts = [f'data_root={folder_root}', 'num_classes=3', 'workers=0', 'batch=4', 'widen_factor=0.1']
    ckpt = str(tmp_path / 'cls.pth')
    save_random_model(CLS, opts, ckpt, size=32)
    report = export_model(osp.join(REPO, CLS), ckpt, targets=['onnx'], precisions=['float32'],
                          work_dir=str(tmp_path / 'export'), cfg_options=as_dict(opts), latency_runs=0,
                          log=lambda *a: None)
    (e, ) = report['exports']
    assert report['task'] == 'classification' and report['output']['shape'] == [1, 3]
    assert e['parity']['max_abs_diff'] <= 1e-4 and e['parity']['argmax_agreement'] == 1.0
    assert e['metrics'] == report['float_metrics'] and 'accuracy/top1' in e['metrics']


@pytest.mark.parametrize('case', ['missing', 'mismatch', 'target', 'tflite', 'precision', 'stride', 'shape'])
def test_export_errors_are_one_line(case, fomo_ckpt, roboflow_root, tmp_path):
    ckpt, _ = fomo_ckpt
    opts = fomo_opts(roboflow_root)
    extra, message = [], None
    if case == 'missing':
        ckpt, message = str(tmp_path / 'none.pth'), 'checkpoint file not found: .*none.pth'
    elif case == 'mismatch':
        ckpt = str(tmp_path / 'other.pth')
        save_random_model(FOMO, opts + ['num_classes=3'], ckpt)
        message = r'does not match the model of .*shape mismatch .*head\.conv\.3\.weight \(4, 32, 1, 1\) vs \(3,'
    elif case == 'target':
        extra, message = ['--targets', 'onnx', 'tensorrt'], '--targets tensorrt: unknown target'
    elif case == 'tflite':
        extra, message = ['--targets', 'vela', '--precisions', 'float32'], 'no supported combination'
    elif case == 'precision':
        extra, message = ['--precisions', 'int4'], '--precisions int4: unknown precision'
    if case in ('stride', 'shape'):
        opts = [o for o in opts if not o.startswith('imgsz')]
    if case == 'stride':
        extra, message = ['--input-shape', '60', '64'], '--input-shape 60 64: FOMO needs .* multiples of .* 8'
    elif case == 'shape':
        extra, message = ['--input-shape', '0', '64'], '--input-shape 0 64: sizes must be positive'
    line = tool_error('export.py', FOMO, ckpt, '--work-dir', str(tmp_path / 'out'), *extra, '--cfg-options', *opts)
    import re
    assert line.startswith('error: ') and '\n' not in line and re.search(message, line), line
    assert not any(f.endswith(('.onnx', '.pt', '.tflite')) for f in os.listdir(tmp_path / 'out')) \
        if osp.isdir(tmp_path / 'out') else True


def test_cli_error_has_no_traceback(tmp_path):
    proc = run_tool('export.py', FOMO, str(tmp_path / 'none.pth'), check=False)
    assert proc.returncode != 0 and 'Traceback' not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith('error: checkpoint file not found')


def test_test_tool_rejects_export_of_other_size(fomo_export, roboflow_root, tmp_path):
    _, _, exports = fomo_export
    opts = [o for o in fomo_opts(roboflow_root) if not o.startswith('imgsz')]  # config default 96x96
    line = tool_error('test.py', FOMO, exports[('onnx', 'float32')]['file'], '--work-dir', str(tmp_path),
                      '--cfg-options', *opts)
    assert line.startswith('error: ') and '\n' not in line
    assert 'fomo_float32.onnx takes input ?x3x64x64' in line and '3x96x96' in line, line


def test_target_that_fails_keeps_the_others(folder_root, tmp_path, monkeypatch):
    """A model onnx2tf cannot convert: the ONNX file is still written, the TFLite/vela failures are reported."""
    from sscma.deploy import exporter
    from sscma.deploy.targets import tflite as tflite_target
    from sscma.utils import ExportError
    calls = []

    def refuse(onnx_path, out_dir, sample):
        calls.append(onnx_path)
        raise ExportError('onnx2tf cannot convert model.onnx to TensorFlow (near ops Einsum)')

    monkeypatch.setattr(tflite_target, 'onnx_to_saved_model', refuse)
    opts = [f'data_root={folder_root}', 'num_classes=3', 'workers=0', 'batch=4', 'widen_factor=0.1']
    ckpt = str(tmp_path / 'cls.pth')
    save_random_model(CLS, opts, ckpt, size=32)
    work = tmp_path / 'export'
    report = exporter.export_model(osp.join(REPO, CLS), ckpt, targets=['onnx', 'tflite', 'vela'],
                                   precisions=['float32', 'int8'], work_dir=str(work), cfg_options=as_dict(opts),
                                   latency_runs=0, run_eval=False, calib_batches=1, log=lambda *a: None)
    assert [(e['target'], e['precision']) for e in report['exports']] == [('onnx', 'float32'), ('onnx', 'int8')]
    assert [(f['target'], f['precision']) for f in report['failed']] == [
        ('tflite', 'float32'), ('tflite', 'int8'), ('vela', 'int8')]
    assert all('near ops Einsum' in f['error'] for f in report['failed'])
    assert len(calls) == 1  # the conversion is not retried for every target
    assert sorted(os.listdir(work)) == ['cls_float32.onnx', 'cls_int8.onnx', 'export_report.json', 'export_report.md']
    assert 'FAILED: onnx2tf cannot convert' in (work / 'export_report.md').read_text()
