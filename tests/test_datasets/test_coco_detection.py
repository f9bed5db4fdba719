import json
import os
import shutil

import numpy as np
import pytest

from sscma.datasets import DetectionDataset, find_coco_split, read_coco_classes
from sscma.registry import TRANSFORMS
from sscma.utils import DatasetError

from ..conftest import write_roboflow_coco


def test_roboflow_layout_odd_category_ids(roboflow_root):
    ds = DetectionDataset(format='coco', data_root=roboflow_root, split='train')
    # placeholder category 0 ('things') dropped; classes ordered by category id (3: block, 7: disc)
    assert ds.metainfo['classes'] == ('block', 'disc')
    assert len(ds) == 8  # empty images kept
    labels = np.concatenate([[i['bbox_label'] for i in ds.get_data_info(k)['instances']] for k in range(len(ds))])
    assert set(labels.tolist()) == {0, 1}
    empty = [k for k in range(len(ds)) if not ds.get_data_info(k)['instances']]
    assert len(empty) == 2


def test_split_aliases_and_test_split(roboflow_root):
    assert find_coco_split(roboflow_root, 'val')[0].endswith(os.path.join('valid', '_annotations.coco.json'))
    assert len(DetectionDataset(format='coco', data_root=roboflow_root, split='test', test_mode=True)) == 4


def test_plain_coco_layout(tmp_path, roboflow_root):
    os.makedirs(tmp_path / 'annotations')
    shutil.copy(os.path.join(roboflow_root, 'train', '_annotations.coco.json'),
                tmp_path / 'annotations' / 'instances_train2017.json')
    shutil.copytree(os.path.join(roboflow_root, 'train'), tmp_path / 'train2017')
    ann, img_dir = find_coco_split(str(tmp_path), 'train')
    assert ann.endswith('instances_train2017.json') and img_dir.endswith('train2017')
    assert len(DetectionDataset(format='coco', data_root=str(tmp_path), split='train')) == 8


def test_border_boxes_survive_pipeline(roboflow_root):
    pipeline = [TRANSFORMS.build(t) for t in [
        dict(type='LoadImageFromFile'), dict(type='mmdet.LoadAnnotations', with_bbox=True),
        dict(type='mmdet.Resize', scale=(64, 64), keep_ratio=False),
        dict(type='Albumentations', transforms=[dict(type='HorizontalFlip', p=1.0)]),
        dict(type='mmdet.PackDetInputs')]]
    ds = DetectionDataset(format='coco', data_root=roboflow_root, split='train', pipeline=pipeline)
    out = ds[1]  # image 1 has a box crossing the right border
    boxes = out['data_samples'].gt_instances.bboxes.tensor
    assert len(boxes) == 2
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= 64).all()
    assert (boxes[:, 2] > boxes[:, 0]).all()
    assert out['inputs'].shape == (3, 64, 64)


def test_num_classes_mismatch(roboflow_root):
    with pytest.raises(DatasetError, match=r"num_classes=3 but .*_annotations.coco.json defines 2 classes"):
        DetectionDataset(format='coco', data_root=roboflow_root, split='train', num_classes=3)


def test_missing_split_lists_what_was_tried(tmp_path):
    with pytest.raises(DatasetError, match='_annotations.coco.json'):
        find_coco_split(str(tmp_path), 'train')
    with pytest.raises(DatasetError, match='does not exist'):
        DetectionDataset(format='coco', data_root=str(tmp_path / 'missing'))


def test_malformed_json(tmp_path):
    os.makedirs(tmp_path / 'train')
    (tmp_path / 'train' / '_annotations.coco.json').write_text('{"images": [}')
    with pytest.raises(DatasetError, match='not valid JSON'):
        DetectionDataset(format='coco', data_root=str(tmp_path), split='train')
    (tmp_path / 'train' / '_annotations.coco.json').write_text(json.dumps({'images': []}))
    with pytest.raises(DatasetError, match='missing "annotations"'):
        read_coco_classes(str(tmp_path / 'train' / '_annotations.coco.json'))


def test_single_real_category_kept(tmp_path):
    root = write_roboflow_coco(tmp_path, n_images=(4, 2, 2))
    path = os.path.join(root, 'train', '_annotations.coco.json')
    data = json.load(open(path))
    data['categories'] = [{'id': 1, 'name': 'only', 'supercategory': 'none'}]
    for a in data['annotations']:
        a['category_id'] = 1
    json.dump(data, open(path, 'w'))
    assert read_coco_classes(path) == ['only']
