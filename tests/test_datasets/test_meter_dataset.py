"""Meter keypoint data: the generated set, COCO-keypoints and labelme parsing, errors, augmentation."""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest

from sscma.datasets import MeterKeypointDataset, ensure_meter_coco
from sscma.datasets.meter_builtin import METER_KEYPOINTS, write_meter_split
from sscma.evaluation.metrics import reading_from_keypoints
from sscma.registry import TRANSFORMS
from sscma.utils import DatasetError

TINY = (('train', 6, 1), ('valid', 3, 2), ('test', 3, 3))


@pytest.fixture(scope='module')
def meters(tmp_path_factory):
    return ensure_meter_coco(tmp_path_factory.mktemp('m') / 'meters', size=96, splits=TINY)


def test_generated_set_layout_and_content(meters):
    coco = json.load(open(meters / 'train' / '_annotations.coco.json'))
    assert coco['categories'][0]['keypoints'] == list(METER_KEYPOINTS)
    assert len(coco['images']) == len(coco['annotations']) == 6
    for img, ann in zip(coco['images'], coco['annotations']):
        assert cv2.imread(str(meters / 'train' / img['file_name'])).shape == (96, 96, 3)
        k = np.array(ann['keypoints']).reshape(4, 3)
        assert ann['num_keypoints'] == 4 and (k[:, 2] == 2).all()
        assert (k[:, :2] >= 0).all() and (k[:, :2] <= 96).all()
        x, y, w, h = ann['bbox']
        assert w > 20 and h > 20
        # the reading from the (perspective-warped) keypoints stays close to the drawn one
        assert abs(reading_from_keypoints(k[:, :2]) - ann['reading']) < 0.12


def test_generation_deterministic_and_idempotent(meters, tmp_path):
    again = ensure_meter_coco(tmp_path / 'm', size=96, splits=TINY)
    ann = 'valid/_annotations.coco.json'
    assert open(meters / ann).read() == open(again / ann).read()
    mtime = os.path.getmtime(again / ann)
    assert ensure_meter_coco(again, size=96, splits=TINY) == again and os.path.getmtime(again / ann) == mtime
    assert not [p for p in os.listdir(tmp_path) if p.startswith('.')]


def test_coco_dataset_reads_and_reorders(meters):
    ds = MeterKeypointDataset(data_root=str(meters), split='valid', num_keypoints=4)
    assert len(ds) == 3 and ds.metainfo['keypoint_names'] == METER_KEYPOINTS
    item = ds.get_data_info(0)
    assert item['gt_keypoints'].shape == (1, 4, 2) and item['gt_keypoints_visible'].tolist() == [[1, 1, 1, 1]]
    rev = MeterKeypointDataset(data_root=str(meters), split='val', keypoint_names=METER_KEYPOINTS[::-1])
    assert np.allclose(rev.get_data_info(0)['gt_keypoints'][0], item['gt_keypoints'][0][::-1])
    with pytest.raises(DatasetError, match='num_keypoints=5 but .* defines 4 keypoints'):
        MeterKeypointDataset(data_root=str(meters), split='valid', num_keypoints=5)
    with pytest.raises(DatasetError, match=r"keypoints \['knob'\] are not in category"):
        MeterKeypointDataset(data_root=str(meters), split='valid', keypoint_names=['center', 'knob'])


def _coco(tmp_path, anns, images=None, cats=None):
    folder = tmp_path / 'train'
    folder.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / 'a.jpg'), np.zeros((32, 32, 3), np.uint8))
    cv2.imwrite(str(folder / 'b.jpg'), np.zeros((32, 32, 3), np.uint8))
    data = dict(images=images or [dict(id=1, file_name='a.jpg', width=32, height=32),
                                  dict(id=2, file_name='b.jpg', width=32, height=32)],
                annotations=anns, categories=cats or [dict(id=1, name='meter', keypoints=['c', 'tip'])])
    (folder / '_annotations.coco.json').write_text(json.dumps(data))
    return str(tmp_path)


def test_coco_unannotated_images_and_malformed_files(tmp_path):
    good = dict(id=5, image_id=1, category_id=1, keypoints=[1, 2, 2, 3, 4, 0])
    root = _coco(tmp_path, [good, dict(good, id=9, keypoints=[9, 9, 2, 9, 9, 2])])
    ds = MeterKeypointDataset(data_root=root, keypoint_names=['c', 'tip'])  # b.jpg has no annotation: skipped
    assert len(ds) == 1
    info = ds.get_data_info(0)
    assert info['gt_keypoints'][0].tolist() == [[1, 2], [3, 4]]  # the first annotation (lowest id)
    assert info['gt_keypoints_visible'][0].tolist() == [1, 0]
    with pytest.raises(DatasetError, match=r'1 image\(s\) without keypoints: .*b.jpg'):
        MeterKeypointDataset(data_root=root, keypoint_names=['c', 'tip'], on_unannotated='error')
    root = _coco(tmp_path, [dict(good, keypoints=[1, 2, 2])])
    with pytest.raises(DatasetError, match=r'_annotations.coco.json: annotation id=5 \(image a.jpg\) "keypoints": '
                       'expected 6 numbers, got 3'):
        MeterKeypointDataset(data_root=root)
    root = _coco(tmp_path, [{k: v for k, v in good.items() if k != 'keypoints'}])
    with pytest.raises(DatasetError, match='annotation id=5 .* has no "keypoints"'):
        MeterKeypointDataset(data_root=root)
    root = _coco(tmp_path, [good], cats=[dict(id=1, name='meter')])
    with pytest.raises(DatasetError, match='no category has a "keypoints" list'):
        MeterKeypointDataset(data_root=root)
    (tmp_path / 'train' / '_annotations.coco.json').write_text('{"images": [')
    with pytest.raises(DatasetError, match='_annotations.coco.json: not valid JSON'):
        MeterKeypointDataset(data_root=root)


def _labelme(folder, name, points, image=True, extra_shapes=()):
    os.makedirs(folder, exist_ok=True)
    if image:
        cv2.imwrite(osp.join(folder, name + '.png'), np.zeros((40, 50, 3), np.uint8))
    shapes = [dict(label=k, points=[list(p)], shape_type='point', flags={}) for k, p in points.items()]
    shapes += list(extra_shapes)
    with open(osp.join(folder, name + '.json'), 'w') as f:
        json.dump(dict(version='5.4.1', shapes=shapes, imagePath=name + '.png', imageHeight=40, imageWidth=50), f)


def test_labelme_folder(tmp_path):
    names = ['center', 'needle_tip', 'scale_start', 'scale_end']
    box = dict(label='meter', points=[[1, 1], [30, 30]], shape_type='rectangle')
    _labelme(tmp_path / 'train', 'm1', {'center': (20, 21), 'needle_tip': (30, 10), 'scale_start': (10, 30),
                                         'scale_end': (30.5, 30.5)}, extra_shapes=[box])
    _labelme(tmp_path / 'train', 'm2', {'scale_end': (1, 2), 'center': (3, 4)})  # partly labelled
    _labelme(tmp_path / 'train', 'm3', {})  # nothing labelled: skipped
    ds = MeterKeypointDataset(data_root=str(tmp_path), split='train', keypoint_names=names, num_keypoints=4)
    assert ds.source_fmt == 'labelme' and len(ds) == 2
    a, b = ds.get_data_info(0), ds.get_data_info(1)
    assert a['img_path'].endswith('m1.png') and a['gt_keypoints'][0].tolist() == [[20, 21], [30, 10], [10, 30],
                                                                                   [30.5, 30.5]]
    assert b['gt_keypoints_visible'][0].tolist() == [1, 0, 0, 1] and b['gt_keypoints'][0][3].tolist() == [1, 2]
    # the default keypoint names are the meter's
    assert MeterKeypointDataset(data_root=str(tmp_path), split='train').keypoint_names == METER_KEYPOINTS


@pytest.mark.parametrize('case, message', [
    ('unknown', r"bad.json: shapes\[0\] label 'knob' is not a keypoint name"),
    ('twice', r"bad.json: keypoint 'center' is labelled twice"),
    ('no_image', r'bad.json: image not found'),
    ('not_labelme', r'bad.json: no "shapes" list; not a labelme file'),
    ('bad_point', r'bad.json: shapes\[0\] \(center\) "points": expected 2 numbers'),
])
def test_labelme_errors_name_the_file(tmp_path, case, message):
    folder = tmp_path / 'valid'
    if case == 'unknown':
        _labelme(folder, 'bad', {'knob': (1, 1)})
    elif case == 'twice':
        _labelme(folder, 'bad', {'center': (1, 1)}, extra_shapes=[dict(label='center', points=[[2, 2]],
                                                                        shape_type='point')])
    elif case == 'no_image':
        _labelme(folder, 'bad', {'center': (1, 1)}, image=False)
    elif case == 'not_labelme':
        os.makedirs(folder)
        (folder / 'bad.json').write_text('{"images": []}')
    else:
        _labelme(folder, 'bad', {})
        data = json.load(open(folder / 'bad.json'))
        data['shapes'] = [dict(label='center', points=[[1, 2, 3]], shape_type='point')]
        (folder / 'bad.json').write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=message):
        MeterKeypointDataset(data_root=str(tmp_path), split='valid')


def test_missing_layout_and_empty_root(tmp_path):
    with pytest.raises(DatasetError, match='no keypoint annotations for split "test"'):
        MeterKeypointDataset(data_root=str(tmp_path), split='test')
    with pytest.raises(DatasetError, match='data_root is empty'):
        MeterKeypointDataset(data_root='')


def test_albumentations_moves_keypoints_with_the_image():
    img = np.zeros((64, 64, 3), np.uint8)
    img[20:23, 40:43] = 255  # a 3x3 dot: centre pixel (41, 21) -> corner coordinates (41.5, 21.5)
    kpts = np.array([[[41.5, 21.5], [100.0, -5.0]]], np.float32)  # the second is outside the image
    for t in (dict(type='Affine', rotate=(30, 30), p=1.0), dict(type='Affine', translate_px=(5, 5), p=1.0),
              dict(type='Affine', scale=(1.3, 1.3), p=1.0), dict(type='HorizontalFlip', p=1.0)):
        aug = TRANSFORMS.build(dict(type='Albumentations', transforms=[t]))
        out = aug.transform(dict(img=img.copy(), gt_keypoints=kpts.copy()))
        m = out['img'][..., 0].astype(np.float64)
        ys, xs = np.mgrid[:64, :64]
        centroid = np.array([(m * xs).sum(), (m * ys).sum()]) / m.sum() + 0.5
        assert out['gt_keypoints'].shape == (1, 2, 2)  # nothing dropped, even outside the image
        assert np.abs(out['gt_keypoints'][0, 0] - centroid).max() < 0.35, t
    # boxes still work alongside
    aug = TRANSFORMS.build(dict(type='Albumentations', transforms=[dict(type='HorizontalFlip', p=1.0)]))
    out = aug.transform(dict(img=img.copy(), gt_keypoints=kpts.copy(), gt_bboxes=np.array([[40, 20, 43, 23]],
                                                                                           np.float32)))
    assert out['gt_bboxes'].tolist() == [[21, 20, 24, 23]] and out['gt_keypoints'][0, 0, 0] == pytest.approx(22.5)


def test_pipeline_packs_pose_samples(meters):
    from sscma.models.utils import encode_keypoints
    ds = MeterKeypointDataset(data_root=str(meters), split='test', pipeline=[
        dict(type='LoadImage'), dict(type='Resize', scale=(64, 48), keep_ratio=False, clip_object_border=False),
        dict(type='PackKeypointInputs')])
    out = ds[0]
    sample = out['data_samples']
    assert out['inputs'].shape == (3, 48, 64)
    raw = ds.get_data_info(0)['gt_keypoints'][0]
    assert sample.metainfo['scale_factor'] == pytest.approx((64 / 96, 48 / 96))
    assert np.allclose(sample.gt_instances.keypoints[0].numpy(), raw * [64 / 96, 48 / 96], atol=1e-4)
    norm = encode_keypoints(sample.gt_instances.keypoints[0], sample.metainfo['img_shape'])
    assert np.allclose(norm.numpy(), raw / 96, atol=1e-5)
