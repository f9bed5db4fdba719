"""Anomaly detection through the tools: fit on normal images, test, export to ONNX / int8 TFLite / TFLite Micro
with every file evaluated by the same metric, and inference with verdicts."""
import json
import os.path as osp

import pytest

from sscma.datasets.anomaly_builtin import write_anomaly_category
from tests.test_deploy.test_export import REPO, run_inprocess

CONFIG = osp.join(REPO, 'configs', 'anomaly', 'anomaly_mobnetv2_128.py')


@pytest.fixture(scope='module')
def coin_run(tmp_path_factory):
    data = tmp_path_factory.mktemp('coin_data')
    write_anomaly_category(data, 'coin', counts=dict(train_good=40, test_good=12, test_defect=4), seed=3)
    work = str(tmp_path_factory.mktemp('coin_run'))
    opts = ['--cfg-options', f'data_root={data}', 'imgsz=(64,64)', 'batch=8', 'workers=0']
    assert run_inprocess('train.py', CONFIG, '--work-dir', work, *opts) in (None, 0)
    return str(data), work, opts


def test_fit_reports_auroc_and_stores_the_threshold(coin_run):
    import torch
    _, work, _ = coin_run
    val = json.load(open(osp.join(work, 'results.json')))['val']
    assert {'anomaly/image_auroc', 'anomaly/pixel_auroc', 'anomaly/aupro', 'anomaly/f1'} <= set(val)
    assert val['anomaly/image_auroc'] > 0.75 and val['anomaly/pixel_auroc'] > 0.8
    state = torch.load(osp.join(work, 'epoch_1.pth'), map_location='cpu', weights_only=False)
    assert float(state['state_dict']['threshold']) != 1.0 and int(state['state_dict']['fitted_images']) == 40
    assert list(state['meta']['dataset_meta']['classes']) == ['normal', 'anomalous']
    assert osp.getsize(osp.join(work, 'vis', 'val_epoch_001.png')) > 1000


def test_test_export_and_inference(coin_run, tmp_path):
    from sscma.deploy import read_export_meta
    data, work, opts = coin_run
    ckpt = osp.join(work, 'epoch_1.pth')
    assert run_inprocess('test.py', CONFIG, ckpt, '--work-dir', str(tmp_path / 'test'), *opts) in (None, 0)
    tested = json.load(open(tmp_path / 'test' / 'results.json'))['test']

    export = str(tmp_path / 'export')
    assert run_inprocess('export.py', CONFIG, ckpt, '--targets', 'onnx', 'tflite', 'tflm', '--precisions', 'float32',
                         'int8', '--latency-runs', '1', '--device', 'xiao_esp32s3', '--work-dir', export,
                         *opts) in (None, 0)
    report = json.load(open(osp.join(export, 'export_report.json')))
    assert report['task'] == 'anomaly' and not report['failed']
    entries = {(e['target'], e['precision']): e for e in report['exports']}
    for key in (('onnx', 'float32'), ('tflite', 'float32')):
        for name in ('anomaly/image_auroc', 'anomaly/pixel_auroc', 'anomaly/aupro', 'anomaly/f1'):
            assert entries[key]['metrics'][name] == pytest.approx(tested[name], abs=1e-4)
    for key in (('tflite', 'int8'), ('tflm', 'int8')):
        metrics = entries[key]['metrics']
        assert abs(metrics['anomaly/image_auroc'] - tested['anomaly/image_auroc']) < 0.1
        assert entries[key]['parity']['decision_agreement'] > 0.75
    tflm = entries[('tflm', 'int8')]
    assert tflm['tflm']['arena_bytes'] > 0 and 'xiao_esp32s3' in json.dumps(tflm['tflm']['devices'])
    header = open(tflm['tflm']['header']).read()  # the map's cell and the decision boundary, for the firmware
    stride = report['input']['shape'][-1] // report['output']['shape'][-1]
    assert f'_OUTPUT_STRIDE {stride}\n' in header and '_SCORE_THRESHOLD 1.0f\n' in header
    assert read_export_meta(entries[('tflite', 'int8')]['file'])['classes'] == ['normal', 'anomalous']

    out = str(tmp_path / 'inference')
    images = osp.join(data, 'test', 'hole')
    assert run_inprocess('inference.py', CONFIG, entries[('tflite', 'int8')]['file'], images, '--out', out,
                         *opts) in (None, 0)
    doc = json.load(open(osp.join(out, 'predictions.json')))
    assert doc['task'] == 'anomaly' and len(doc['predictions']) == 4
    assert all({'score', 'anomalous', 'cells_above'} <= set(p) for p in doc['predictions'])
