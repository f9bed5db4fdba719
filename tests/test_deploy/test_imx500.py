"""The Sony IMX500 target: MCT post-training quantisation of a tiny FOMO and a tiny classifier, the MCTQ ONNX
it writes (quantiser custom ops), that file's outputs and test metric next to the float model's, Sony's
converter when it is installed (``$SSCMA_IMXCONV`` or ``imxconv-pt`` on PATH), and the one-line error when MCT
is not installed."""
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys

import cv2
import pytest

from sscma.deploy.targets.imx500 import IMX500Target, find_converter
from tests.conftest import write_class_folders
from tests.test_deploy.test_export import CLS, FOMO, REPO, as_dict, fomo_opts, run_inprocess, save_random_model

needs_mct = pytest.mark.skipif(IMX500Target().unavailable() is not None, reason=str(IMX500Target().unavailable()))


def export_imx500(config, opts, ckpt, work, **kwargs):
    from sscma.deploy import export_model
    return export_model(osp.join(REPO, config), ckpt, targets=['imx500'], precisions=['int8'], work_dir=str(work),
                        cfg_options=as_dict(opts), calib_batches=2, latency_runs=2, log=lambda *a: None, **kwargs)


def fit_briefly(model, root, hw, ckpt, steps=10):
    """A few Adam steps on the training images: a random classifier's logits are too close for any int8 model
    (ppq's int8 ONNX keeps 44 % of its top-1 on the test below); after these, MCT keeps all of them."""
    import glob

    import numpy as np
    import torch

    from sscma.deploy.wrapper import wrap_for_export
    labels = json.load(open(osp.join(root, 'labels.json')))
    files = sorted(glob.glob(osp.join(root, 'training', '*', '*.png')))
    x = torch.from_numpy(np.stack([cv2.resize(cv2.imread(f), hw[::-1])[:, :, ::-1] for f in files])).float()
    y = torch.tensor([labels[osp.basename(osp.dirname(f))] for f in files])
    wrapper = wrap_for_export(model)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    torch.manual_seed(0)
    model.train()
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(wrapper(x.permute(0, 3, 1, 2)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.save({'state_dict': model.eval().state_dict(), 'meta': {}}, ckpt)


def quantizer_ops(path):
    import onnx
    return [n.op_type for n in onnx.load(path).graph.node if n.domain == 'mct_quantizers']


@pytest.fixture(scope='module')
def fomo_imx500(roboflow_root, tmp_path_factory):
    """The FOMO (0.1 width, 64x64 input) on the 112x84 Roboflow files, converter left out (tested on its own)."""
    tmp = tmp_path_factory.mktemp('fomo_imx500')
    ckpt = str(tmp / 'fomo.pth')
    save_random_model(FOMO, fomo_opts(roboflow_root), ckpt, classes=('block', 'disc'))
    mp = pytest.MonkeyPatch()
    mp.setenv('SSCMA_IMXCONV', str(tmp / 'no-imxconv-pt'))
    try:
        report = export_imx500(FOMO, fomo_opts(roboflow_root), ckpt, tmp / 'export')
    finally:
        mp.undo()
    return report, ckpt


@needs_mct
def test_fomo_quantised_by_mct_agrees_with_float(fomo_imx500, roboflow_root, tmp_path):
    report, _ = fomo_imx500
    assert report['failed'] == []
    (entry, ) = report['exports']
    assert entry['file'].endswith('fomo_int8_imx500.onnx') and osp.isfile(entry['file'])
    from sscma.deploy import model_class_names
    assert model_class_names(entry['file']) == ['block', 'disc']  # the names travel in the MCT ONNX too
    ops = quantizer_ops(entry['file'])
    assert ops.count('WeightsSymmetricQuantizer') == entry['imx500']['weight_quantizer_nodes'] > 0
    assert ops.count('ActivationPOTQuantizer') == entry['imx500']['activation_quantizer_nodes'] > 0
    assert entry['imx500']['calibration_images'] == 8  # 2 train batches of 4
    assert entry['input_shape'] == ['batch', 3, 64, 64]
    # 8-bit power-of-two activations on per-cell softmax probabilities. Random weights give near-uniform cells,
    # so argmax and centroids are fragile: measured max abs diff 0.050-0.052 (8 % of the largest probability),
    # mean 0.008-0.009, 86-89 % of cells with the same class, 73-100 % of centroids at the same place
    p = entry['parity']
    assert p['max_rel_diff'] < 0.2 and p['mean_abs_diff'] < 0.02, p
    assert p['argmax_agreement'] >= 0.75 and p['centroid_agreement'] >= 0.6, p
    delta = entry['metric_delta']
    assert abs(delta['fomo/f1']) <= 0.25 and abs(delta['fomo/tp']) + abs(delta['fomo/fp']) <= 3, delta
    conv = entry['imx500']['converter']
    assert not conv['ran'] and 'no-imxconv-pt is not an executable' in conv['reason']
    assert 'imx500-package -i packerOut.zip' in conv['reason']
    md = open(osp.join(osp.dirname(entry['file']), 'export_report.md')).read()
    assert '`fomo_int8_imx500.onnx` | imx500 | int8' in md and 'not converted here' in md


@needs_mct
def test_test_tool_runs_the_mctq_onnx(fomo_imx500, roboflow_root, tmp_path):
    """tools/test.py on the file: the imx500 target's backend (by its suffix), the report's metric."""
    report, _ = fomo_imx500
    (entry, ) = report['exports']
    assert run_inprocess('test.py', FOMO, entry['file'], '--work-dir', str(tmp_path), '--cfg-options',
                         *fomo_opts(roboflow_root)) in (None, 0)
    test = json.load(open(tmp_path / 'results.json'))['test']
    assert (test['fomo/tp'], test['fomo/fp'], test['fomo/fn']) == (
        entry['metrics']['fomo/tp'], entry['metrics']['fomo/fp'], entry['metrics']['fomo/fn'])


@needs_mct
def test_classifier_on_non_square_images(tmp_path):
    """MobileNetV2 classifier, 48x32 (W x H) input, 44x30 files: logits and top-1 next to the float model's."""
    root = write_class_folders(tmp_path / 'data', ['cat', 'dog', 'fox'], size=32, labels={'dog': 0, 'cat': 1, 'fox': 2})
    for folder, _, files in os.walk(root):
        for name in files:
            if name.endswith('.png'):
                path = osp.join(folder, name)
                cv2.imwrite(path, cv2.resize(cv2.imread(path), (44, 30)))
    opts = [f'data_root={root}', 'num_classes=3', 'workers=0', 'batch=4', 'widen_factor=0.1', 'imgsz=(48,32)']
    ckpt = str(tmp_path / 'cls.pth')
    model, _ = save_random_model(CLS, opts, ckpt, size=32)
    fit_briefly(model, root, (32, 48), ckpt)
    report = export_imx500(CLS, opts, ckpt, tmp_path / 'export')
    assert report['failed'] == [] and report['input']['shape'] == [1, 3, 32, 48]
    (entry, ) = report['exports']
    assert quantizer_ops(entry['file']).count('WeightsSymmetricQuantizer') > 0
    p = entry['parity']
    # measured: max abs diff 19 % of the largest logit, the same top-1 on every image
    assert p['max_rel_diff'] < 0.3 and p['argmax_agreement'] >= 0.9, p
    assert abs(entry['metric_delta']['accuracy/top1']) <= 100 * 2 / 18 + 1e-3, entry['metric_delta']  # 2 images


@needs_mct
@pytest.mark.skipif(find_converter() is None, reason='imxconv-pt not installed (set SSCMA_IMXCONV)')
def test_sony_converter_writes_packer_zip(fomo_imx500, tmp_path):
    from sscma.deploy.targets.imx500 import convert_imx500
    report, _ = fomo_imx500
    conv = convert_imx500(report['exports'][0]['file'], str(tmp_path / 'fomo_int8_imx500'))
    assert conv['ran'] and 'error' not in conv, conv
    assert osp.getsize(conv['packer']) > 0 and conv['memory']['Fit In Chip'] is True
    assert conv['version'].startswith('imxconv-pt ')


def test_missing_mct_is_one_line_and_keeps_the_others(monkeypatch, roboflow_root, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec',
                        lambda name, *a: None if name == 'model_compression_toolkit' else real(name, *a))
    message = IMX500Target().unavailable()
    assert message.startswith('IMX500 export needs model-compression-toolkit; install it with pip install ')
    assert 'model-compression-toolkit==2.6.1' in message and '\n' not in message
    from sscma.deploy import export_model
    ckpt = str(tmp_path / 'fomo.pth')
    save_random_model(FOMO, fomo_opts(roboflow_root), ckpt)
    report = export_model(osp.join(REPO, FOMO), ckpt, targets=['torchscript', 'imx500'],
                          precisions=['float32', 'int8'], work_dir=str(tmp_path / 'export'),
                          cfg_options=as_dict(fomo_opts(roboflow_root)), run_eval=False, latency_runs=0,
                          parity_images=4, log=lambda *a: None)
    assert [(e['target'], e['precision']) for e in report['exports']] == [('torchscript', 'float32')]
    assert report['failed'] == [dict(target='imx500', precision='int8', error=message)]


def test_sscma_does_not_import_mct():
    code = ('import sys, sscma; from sscma.deploy.targets import get_target; get_target("imx500").unavailable(); '
            'print(sorted(m for m in ("model_compression_toolkit", "mct_quantizers", "edgemdt_tpc") if m in sys.modules))')
    out = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip().splitlines()[-1] == '[]', out.stderr[-2000:]
