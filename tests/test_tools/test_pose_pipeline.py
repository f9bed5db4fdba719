"""Multi-object pose through the tools: train on a COCO-keypoints export, test the checkpoint alone on the COCO and
the YOLO-pose layout of the same images, export to ONNX / int8 TFLite / TFLite Micro with every file scored by OKS
AP, and inference writing boxes + keypoints + visibilities."""
import json
import os.path as osp

import pytest

from sscma.datasets.pose_builtin import write_pose_split, write_yolo_pose
from tests.test_deploy.test_export import REPO, run_inprocess

CONFIG = osp.join(REPO, 'configs', 'pose', 'yoloxpose_nano_192.py')
GAUGE_KEYPOINTS = ['center', 'needle_tip', 'scale_start', 'scale_end']
METRICS = ('coco/AP', 'coco/AP .5', 'coco/AR', 'coco/PCK@0.1', 'coco/PCK@0.1/needle_tip')


@pytest.fixture(scope='module')
def pose_run(tmp_path_factory):
    coco = tmp_path_factory.mktemp('pose_coco')
    for split, count, seed in (('train', 32, 31), ('valid', 8, 32), ('test', 8, 33)):
        write_pose_split(coco / split, 'gauges', count, seed)
    yolo = write_yolo_pose(coco, tmp_path_factory.mktemp('pose_yolo') / 'export')
    work = str(tmp_path_factory.mktemp('pose_run'))
    # every cell kept (no score threshold before NMS): after 3 epochs no score passes the config's 0.01
    opts = ['num_keypoints=4', 'imgsz=(96,96)', 'batch=8', 'workers=0', 'model.test_cfg.score_thr=0.0']
    assert run_inprocess('train.py', CONFIG, '--work-dir', work, '--cfg-options', f'data_root={coco}', *opts,
                         'max_epochs=3', 'val_interval=1') in (None, 0)
    return coco, yolo, work, opts


def test_trains_with_oks_ap_pck_and_skeleton_pngs(pose_run):
    _, _, work, _ = pose_run
    results = json.load(open(osp.join(work, 'results.json')))
    assert set(METRICS) <= set(results['val'])
    assert 0.0 <= results['val']['coco/AP'] <= 1.0
    assert osp.getsize(osp.join(work, 'vis', 'val_epoch_003.png')) > 1000


def test_same_ap_on_both_layouts_then_export_and_inference(pose_run, tmp_path):
    from sscma.deploy import read_export_meta
    coco, yolo, work, opts = pose_run
    ckpt = osp.join(work, 'epoch_3.pth')
    scores = {}
    for layout, folder in (('coco', coco), ('yolo', yolo)):
        out = tmp_path / f'test_{layout}'
        # the checkpoint alone: its config, class and keypoint names travel inside it
        assert run_inprocess('test.py', ckpt, '--work-dir', str(out), '--cfg-options', f'data_root={folder}',
                             'workers=0', 'model.test_cfg.score_thr=0.0') in (None, 0)
        scores[layout] = json.load(open(out / 'results.json'))['test']
    for key in METRICS:
        assert scores['yolo'][key] == pytest.approx(scores['coco'][key], abs=1e-9), key
    ref = scores['coco']  # about 0 after 3 epochs: test_pose_metric.py checks both layouts' AP on known values

    export = str(tmp_path / 'export')
    assert run_inprocess('export.py', ckpt, '--targets', 'onnx', 'tflite', 'tflm', '--precisions', 'float32', 'int8',
                         '--latency-runs', '1', '--calib-batches', '2', '--device', 'xiao_esp32s3', '--work-dir',
                         export, '--cfg-options', f'data_root={coco}', *opts) in (None, 0)
    report = json.load(open(osp.join(export, 'export_report.json')))
    assert report['task'] == 'pose' and not report['failed']
    entries = {(e['target'], e['precision']): e for e in report['exports']}
    for key in (('onnx', 'float32'), ('tflite', 'float32')):
        for metric in METRICS:
            assert entries[key]['metrics'][metric] == pytest.approx(ref[metric], abs=1e-4), (key, metric)
    for key in (('onnx', 'int8'), ('tflite', 'int8'), ('tflm', 'int8')):
        assert set(METRICS) <= set(entries[key]['metrics']), key
    assert entries[('tflm', 'int8')]['tflm']['arena_bytes'] > 0
    meta = read_export_meta(entries[('tflite', 'int8')]['file'])
    assert meta['classes'] == ['gauge'] and meta['keypoint_names'] == GAUGE_KEYPOINTS
    header = open(entries[('tflm', 'int8')]['file'].replace('.cc', '.h')).read()
    assert '_NUM_KEYPOINTS 4' in header

    out = str(tmp_path / 'inference')
    images = osp.join(coco, 'test')
    assert run_inprocess('inference.py', entries[('tflite', 'int8')]['file'], images, '--out', out,
                         '--score-thr', '0.0', '--cfg-options', *opts) in (None, 0)
    doc = json.load(open(osp.join(out, 'predictions.json')))
    assert doc['task'] == 'pose' and len(doc['predictions']) == 8
    objects = [o for p in doc['predictions'] for o in p['objects']]
    assert objects and all(len(o['keypoints']) == 4 and len(o['keypoint_scores']) == 4 for o in objects)
    assert doc['predictions'][0]['keypoint_names'] == GAUGE_KEYPOINTS
