"""Segmentation through the tools: train, test the same checkpoint on three layouts of the same images, export to
ONNX / int8 TFLite / TFLite Micro with every file scored by mIoU, and inference with areas and polygons."""
import json
import os.path as osp

import pytest

from sscma.datasets.segmentation_builtin import write_seg_set
from tests.test_deploy.test_export import REPO, run_inprocess

CONFIG = osp.join(REPO, 'configs', 'segmentation', 'lraspp_mobnetv2_96.py')


@pytest.fixture(scope='module')
def seg_run(tmp_path_factory):
    root = tmp_path_factory.mktemp('seg_data')
    folders = write_seg_set(root, ('masks', 'yolo', 'coco'),
                            splits=(('train', 48, 21), ('val', 12, 22), ('test', 12, 23)), ignore_band=False)
    work = str(tmp_path_factory.mktemp('seg_run'))
    opts = ['--cfg-options', f'data_root={folders["masks"]}', 'imgsz=(64,64)', 'batch=8', 'workers=0']
    assert run_inprocess('train.py', CONFIG, '--work-dir', work, *opts, 'max_epochs=3') in (None, 0)
    return folders, work, opts


def test_trains_with_miou_confusion_and_pngs(seg_run):
    _, work, _ = seg_run
    results = json.load(open(osp.join(work, 'results.json')))
    assert {'seg/mIoU', 'seg/aAcc', 'seg/IoU.coin', 'seg/IoU.face'} <= set(results['val'])
    assert results['val']['seg/mIoU'] > 0.4
    assert osp.getsize(results['val_confusion_matrix_png']) > 1000
    assert osp.getsize(osp.join(work, 'vis', 'val_epoch_003.png')) > 1000


def test_same_miou_on_every_layout_then_export_and_inference(seg_run, tmp_path):
    from sscma.deploy import read_export_meta
    folders, work, opts = seg_run
    ckpt = osp.join(work, 'epoch_3.pth')
    scores = {}
    for layout, folder in folders.items():
        out = tmp_path / f'test_{layout}'
        layout_opts = ['--cfg-options', f'data_root={folder}', 'imgsz=(64,64)', 'batch=8', 'workers=0']
        assert run_inprocess('test.py', CONFIG, ckpt, '--work-dir', str(out), *layout_opts) in (None, 0)
        scores[layout] = json.load(open(out / 'results.json'))['test']
    ref = scores['masks']
    for layout in ('yolo', 'coco'):
        for key in ('seg/mIoU', 'seg/aAcc', 'seg/IoU.coin', 'seg/IoU.face'):
            assert scores[layout][key] == pytest.approx(ref[key], abs=1e-9), (layout, key)

    export = str(tmp_path / 'export')
    assert run_inprocess('export.py', CONFIG, ckpt, '--targets', 'onnx', 'tflite', 'tflm', '--precisions', 'float32',
                         'int8', '--latency-runs', '1', '--device', 'xiao_esp32s3', '--work-dir', export,
                         *opts) in (None, 0)
    report = json.load(open(osp.join(export, 'export_report.json')))
    assert report['task'] == 'segmentation' and not report['failed']
    entries = {(e['target'], e['precision']): e for e in report['exports']}
    for key in (('onnx', 'float32'), ('tflite', 'float32')):
        assert entries[key]['metrics']['seg/mIoU'] == pytest.approx(ref['seg/mIoU'], abs=1e-4)
    for key in (('onnx', 'int8'), ('tflite', 'int8'), ('tflm', 'int8')):
        assert abs(entries[key]['metrics']['seg/mIoU'] - ref['seg/mIoU']) < 0.05, key
    assert entries[('tflm', 'int8')]['tflm']['arena_bytes'] > 0
    assert read_export_meta(entries[('tflite', 'int8')]['file'])['classes'] == ['background', 'coin', 'face']

    out = str(tmp_path / 'inference')
    images = osp.join(folders['masks'], 'img_dir', 'test')
    assert run_inprocess('inference.py', CONFIG, entries[('tflite', 'int8')]['file'], images, '--out', out,
                         *opts) in (None, 0)
    doc = json.load(open(osp.join(out, 'predictions.json')))
    assert doc['task'] == 'segmentation' and len(doc['predictions']) == 12
    first = doc['predictions'][0]
    assert abs(sum(a['fraction'] for a in first['areas']) - 1.0) < 1e-3 and 'polygons' in first
