"""DetectionDataset: the same scenes as COCO, YOLO and VOC give the same instances, alone and through the
FOMO / RTMDet test pipelines and mmdet's CocoMetric."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

from sscma.datasets import DetectionDataset, detect_format
from sscma.registry import DATASETS, METRICS
from sscma.utils import ConfigError, DatasetError, load_config

from ..detection_data import CLASSES, FORMATS, write_detection_scenes

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FOMO = osp.join(REPO, 'configs', 'fomo', 'fomo_mobnetv2.py')
RTMDET = osp.join(REPO, 'configs', 'rtmdet', 'rtmdet_nano_96.py')


@pytest.fixture(scope='module')
def roots(tmp_path_factory):
    base = tmp_path_factory.mktemp('formats')
    out = {}
    for fmt in FORMATS:
        out[fmt] = str(base / fmt)
        scenes = write_detection_scenes(out[fmt], fmt)
    out['scenes'] = scenes
    return out


def _by_name(infos):
    return {osp.basename(d['img_path']): d for d in infos}


@pytest.mark.parametrize('split', ['train', 'valid', 'test'])
def test_same_scenes_same_instances(roots, split):
    ref = None
    for fmt in FORMATS:
        ds = DetectionDataset(data_root=roots[fmt], split=split, test_mode=split != 'train')
        assert ds.format == detect_format(roots[fmt]) == fmt.split('_')[0].replace('labelimg', 'voc')
        assert ds.metainfo['classes'] == CLASSES
        got = {name: ((d['width'], d['height']), [i['bbox_label'] for i in d['instances']],
                      np.array([i['bbox'] for i in d['instances']]).reshape(-1, 4),
                      [i['ignore_flag'] for i in d['instances']]) for name, d in _by_name(ds).items()}
        if ref is None:
            ref = got
            want = {sc['name'] + '.jpg': sc for sc in roots['scenes'][split]}
            assert got.keys() == want.keys()
            for name, sc in want.items():
                assert got[name][0] == sc['size'] and got[name][1] == [o[0] for o in sc['objects']]
                np.testing.assert_allclose(got[name][2], np.array([o[1] for o in sc['objects']]).reshape(-1, 4),
                                           atol=1e-3)
            continue
        assert got.keys() == ref.keys(), fmt
        for name in ref:
            assert got[name][0] == ref[name][0] and got[name][1] == ref[name][1] and got[name][3] == ref[name][3]
            np.testing.assert_allclose(got[name][2], ref[name][2], atol=1.0, err_msg=f'{fmt} {name}')


def _pipeline_boxes(cfg_path, root):
    cfg = load_config(cfg_path, {'data_root': root, 'num_classes': 3})
    ds = DATASETS.build(cfg.test_dataloader.dataset)
    out = {}
    for k in range(len(ds)):
        item = ds[k]
        sample = item['data_samples']
        assert item['inputs'].shape[-2:] == (96, 96)  # network input; the images are 128x128 ... 64x48
        out[osp.basename(sample.img_path)] = (sample.gt_instances.bboxes.tensor.numpy(),
                                              sample.gt_instances.labels.numpy(), sample.ori_shape, sample)
    return ds, out


def test_fomo_test_pipeline_keeps_boxes_in_original_pixels(roots):
    ref = None
    for fmt in FORMATS:
        _, got = _pipeline_boxes(FOMO, roots[fmt])
        if ref is None:
            ref = got
            for sc in roots['scenes']['test']:
                boxes, labels, ori_shape, _ = got[sc['name'] + '.jpg']
                assert ori_shape == sc['size'][::-1]
                np.testing.assert_allclose(boxes, np.array([o[1] for o in sc['objects']]).reshape(-1, 4),
                                           atol=1e-3)
                assert labels.tolist() == [o[0] for o in sc['objects']]
            continue
        assert got.keys() == ref.keys()
        for name in ref:
            np.testing.assert_allclose(got[name][0], ref[name][0], atol=1.0, err_msg=f'{fmt} {name}')
            assert got[name][1].tolist() == ref[name][1].tolist()


@pytest.mark.parametrize('fmt', ['yolo', 'voc'])
def test_coco_metric_on_yolo_and_voc(roots, fmt):
    """mmdet's CocoMetric without ann_file (the RTMDet configs) scores ground truth as predictions 1.0."""
    ds, items = _pipeline_boxes(RTMDET, roots[fmt])
    metric = METRICS.build(dict(type='mmdet.CocoMetric', metric='bbox'))
    metric.dataset_meta = ds.metainfo
    samples = []
    for boxes, labels, _, sample in items.values():
        pred = DetDataSample(metainfo=sample.metainfo)
        pred.pred_instances = InstanceData(bboxes=torch.tensor(boxes), labels=torch.tensor(labels),
                                           scores=torch.ones(len(labels)))
        samples.append(pred.to_dict())
    metric.process({}, samples)
    result = metric.evaluate(len(samples))
    assert result['coco/bbox_mAP'] == pytest.approx(1.0)


def test_test_pipeline_must_load_boxes_after_resize(roots):
    pipeline = [dict(type='LoadImage'), dict(type='mmdet.LoadAnnotations', with_bbox=True),
                dict(type='mmdet.Resize', scale=(96, 96), keep_ratio=False), dict(type='mmdet.PackDetInputs')]
    with pytest.raises(ConfigError, match=r'test pipeline: LoadAnnotations \(step 2\) comes before Resize \(step 3\); '
                       'load annotations after the resize'):
        DetectionDataset(data_root=roots['yolo'], split='valid', test_mode=True, pipeline=pipeline)
    DetectionDataset(data_root=roots['yolo'], split='train', pipeline=pipeline)  # training pipelines may
    pipeline[1], pipeline[2] = pipeline[2], pipeline[1]
    DetectionDataset(data_root=roots['yolo'], split='valid', test_mode=True, pipeline=pipeline)


def test_training_split_without_annotations(tmp_path):
    write_detection_scenes(tmp_path, 'yolo', dict(train=3, valid=2))
    for f in (tmp_path / 'labels' / 'train').iterdir():
        f.write_text('')
    with pytest.raises(DatasetError, match=r'data\.yaml: no annotations in the training split "train" \(3 images, '
                       r"none with an object of \['block', 'disc', 'ring'\]\)"):
        DetectionDataset(data_root=str(tmp_path), split='train')
    assert len(DetectionDataset(data_root=str(tmp_path), split='train', test_mode=True)) == 3


def test_format_and_class_choices(roots, tmp_path):
    with pytest.raises(ConfigError, match=r"format='csv': expected one of \('auto', 'coco', 'yolo', 'voc'\)"):
        DetectionDataset(data_root=roots['coco'], format='csv')
    with pytest.raises(DatasetError, match='no COCO annotations for split "train"'):
        DetectionDataset(data_root=roots['yolo'], format='coco')
    with pytest.raises(DatasetError, match=r'no detection annotations found under data_root=.*: expected COCO json'):
        DetectionDataset(data_root=str(tmp_path))
    with pytest.raises(DatasetError, match=r"num_classes=2 but .*data\.yaml defines 3 classes"):
        DetectionDataset(data_root=roots['yolo'], num_classes=2)
    ds = DetectionDataset(data_root=roots['voc'], classes=['ring', 'disc'])
    labels = {i['bbox_label'] for d in ds for i in d['instances']}
    assert ds.metainfo['classes'] == ('ring', 'disc') and labels == {0, 1}
    with pytest.raises(DatasetError, match=r"classes \['star'\] are not classes of"):
        DetectionDataset(data_root=roots['coco'], classes=['star'])


def test_builtin_default():
    ds = DetectionDataset(builtin='fomo_objects', split='valid', test_mode=True, num_classes=2)
    assert ds.format == 'coco' and ds.metainfo['classes'] == ('coin', 'face') and len(ds) == 150
