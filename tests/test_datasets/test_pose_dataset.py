"""Multi-object keypoints: COCO-keypoints and YOLO-pose exports of the same images read the same, left/right pairs
come from the data and survive a flip, bad files are named."""
import json
import shutil

import numpy as np
import pytest
import yaml

from sscma.datasets import PoseDataset
from sscma.datasets.pose_builtin import COCO_KEYPOINTS, write_pose_split, write_yolo_pose
from sscma.utils.errors import DatasetError


@pytest.fixture(scope='module')
def pose_layouts(tmp_path_factory):
    """The same generated figures (non-square files of several sizes) as a Roboflow COCO-keypoints export and
    as an Ultralytics YOLO-pose export."""
    coco = tmp_path_factory.mktemp('pose_coco')
    for split, count, seed in (('train', 6, 1), ('valid', 4, 2), ('test', 4, 3)):
        write_pose_split(coco / split, 'figures', count, seed)
    yolo = write_yolo_pose(coco, tmp_path_factory.mktemp('pose_yolo') / 'export')
    return coco, yolo


def _annotations(ds):
    return {ds.get_data_info(i)['img_path'].rsplit('/', 1)[-1]: ds.get_data_info(i)['raw_ann_info']
            for i in range(len(ds))}


def test_coco_and_yolo_layouts_read_the_same_objects(pose_layouts):
    coco, yolo = pose_layouts
    a = PoseDataset(data_root=str(coco), split='valid', pipeline=[], test_mode=True)
    b = PoseDataset(data_root=str(yolo), split='valid', pipeline=[], test_mode=True)
    assert (a.format, b.format) == ('coco', 'yolo')
    assert a.keypoint_names == b.keypoint_names == tuple(COCO_KEYPOINTS)
    assert a.metainfo['flip_indices'] == b.metainfo['flip_indices']
    assert a.metainfo['sigma_source'].startswith('COCO') and np.allclose(a.metainfo['sigmas'], b.metainfo['sigmas'])
    anns_a, anns_b = _annotations(a), _annotations(b)
    assert sorted(anns_a) == sorted(anns_b) and sum(len(v) for v in anns_a.values()) > 4
    for name, objects in anns_a.items():
        assert len(objects) == len(anns_b[name])
        ka = np.asarray([o['keypoints'] for o in objects]).reshape(len(objects), -1, 3)
        kb = np.asarray([o['keypoints'] for o in anns_b[name]]).reshape(len(objects), -1, 3)
        assert np.array_equal(ka[..., 2], kb[..., 2])
        assert np.abs(ka[..., :2] - kb[..., :2]).max() < 0.01  # YOLO stores 6 decimals of the image size
        boxes_a, boxes_b = (np.asarray([o['bbox'] for o in objs]) for objs in (objects, anns_b[name]))
        assert np.abs(boxes_a - boxes_b).max() < 0.01


def test_left_and_right_stay_straight_through_a_flip(pose_layouts):
    coco, yolo = pose_layouts
    names = list(COCO_KEYPOINTS)
    left, right = names.index('left_wrist'), names.index('right_wrist')
    for root in (coco, yolo):
        pipeline = [dict(type='LoadImage'), dict(type='mmpose.RandomFlip', prob=1.0, direction='horizontal')]
        plain = PoseDataset(data_root=str(root), split='train', pipeline=[dict(type='LoadImage')])
        flipped = PoseDataset(data_root=str(root), split='train', pipeline=pipeline)
        assert flipped.metainfo['flip_indices'][left] == right and flipped.metainfo['flip_indices'][right] == left
        compared = 0
        for i in range(len(plain)):
            a, b = plain[i], flipped[i]
            w = a['img'].shape[1]
            assert b['img'].shape == a['img'].shape and np.array_equal(b['img'], a['img'][:, ::-1])
            both = (a['keypoints_visible'][:, right] > 0) & (b['keypoints_visible'][:, left] > 0)
            # the flipped left wrist is the mirrored right wrist (mmpose mirrors pixel indices: w - 1 - x)
            assert np.allclose(b['keypoints'][both, left, 0], w - 1 - a['keypoints'][both, right, 0], atol=1e-3)
            assert np.allclose(b['keypoints'][both, left, 1], a['keypoints'][both, right, 1], atol=1e-3)
            compared += both.sum()
        assert compared >= 5


def test_yolo_pose_flip_idx_and_two_value_keypoints(pose_layouts, tmp_path):
    _, yolo = pose_layouts
    root = tmp_path / 'export'
    shutil.copytree(yolo, root)
    data = yaml.safe_load((root / 'data.yaml').read_text())
    data.pop('kpt_names')  # pairs now come from flip_idx alone
    data['flip_idx'] = list(reversed(range(17)))
    (root / 'data.yaml').write_text(yaml.safe_dump(data))
    ds = PoseDataset(data_root=str(root), split='valid', pipeline=[], test_mode=True, num_keypoints=17)
    assert list(ds.metainfo['flip_indices']) == list(reversed(range(17)))
    assert ds.metainfo['sigma_source'].startswith('uniform')  # no names: not known to be COCO's keypoints

    # kpt_shape [K, 2]: x y only; a keypoint at 0 0 is unlabelled, any other labelled (visibility 2)
    label = sorted((root / 'labels' / 'valid').glob('*.txt'))[0]
    lines = []
    for line in label.read_text().splitlines():
        v = line.split()
        kp = np.asarray(v[5:], float).reshape(17, 3)
        kp[kp[:, 2] == 0, :2] = 0
        lines.append(' '.join(v[:5] + [f'{x:.6f}' for x in kp[:, :2].reshape(-1)]))
    label.write_text('\n'.join(lines) + '\n')
    data['kpt_shape'] = [17, 2]
    (root / 'data.yaml').write_text(yaml.safe_dump(data))
    for other in (root / 'labels' / 'valid').glob('*.txt'):
        if other != label:
            other.unlink()
    ds = PoseDataset(data_root=str(root), split='valid', pipeline=[], test_mode=True)
    info = [ds.get_data_info(i) for i in range(len(ds))]
    anns = [a for d in info if d['img_path'].endswith(label.stem + '.jpg') for a in d['raw_ann_info']]
    vis = np.asarray([a['keypoints'] for a in anns]).reshape(len(anns), 17, 3)[..., 2]
    assert len(anns) == len(lines) and set(np.unique(vis)) <= {0, 2} and (vis == 2).any()


@pytest.mark.parametrize('edit, message', [
    (lambda v: v[:-1], r'expected "class cx cy w h" and 17 keypoints of 3 values \(kpt_shape \[17, 3\]\): 56 values, '
                       r'got 55'),
    (lambda v: v[:7] + ['3'] + v[8:], r'keypoint visibility must be 0, 1 or 2, got 3'),
    (lambda v: v[:5] + ['1.5', '0.5', '2'] + v[8:], r'keypoints must be normalised to \[0, 1\]'),
])
def test_bad_yolo_pose_lines_are_named(pose_layouts, tmp_path, edit, message):
    _, yolo = pose_layouts
    root = tmp_path / 'export'
    shutil.copytree(yolo, root)
    label = sorted((root / 'labels' / 'valid').glob('*.txt'))[0]
    lines = label.read_text().splitlines()
    lines[0] = ' '.join(edit(lines[0].split()))
    label.write_text('\n'.join(lines) + '\n')
    with pytest.raises(DatasetError, match=rf'{label.name}:1: {message}'):
        PoseDataset(data_root=str(root), split='valid', pipeline=[], test_mode=True)


def test_cvat_person_keypoints_export_and_class_errors(pose_layouts, tmp_path):
    coco, _ = pose_layouts
    root = tmp_path / 'cvat'
    (root / 'annotations').mkdir(parents=True)
    shutil.copytree(coco / 'test', root / 'images')
    data = json.loads((root / 'images' / '_annotations.coco.json').read_text())
    (root / 'images' / '_annotations.coco.json').unlink()
    (root / 'annotations' / 'person_keypoints_default.json').write_text(json.dumps(data))
    ds = PoseDataset(data_root=str(root), split='', pipeline=[], test_mode=True)
    assert len(ds) == 4 and ds.keypoint_names == tuple(COCO_KEYPOINTS)
    assert sum(len(ds.get_data_info(i)['raw_ann_info']) for i in range(len(ds))) == len(data['annotations'])

    with pytest.raises(DatasetError, match=r'num_keypoints=4 .*17 keypoints'):
        PoseDataset(data_root=str(root), split='', pipeline=[], test_mode=True, num_keypoints=4)
    data['categories'].append(dict(data['categories'][0], id=2, name='robot'))
    data['annotations'][0]['category_id'] = 2
    (root / 'annotations' / 'person_keypoints_default.json').write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=r'classes=\['):
        PoseDataset(data_root=str(root), split='', pipeline=[], test_mode=True)
    ds = PoseDataset(data_root=str(root), split='', pipeline=[], test_mode=True, classes=['person'])
    assert sum(len(ds.get_data_info(i)['raw_ann_info']) for i in range(len(ds))) == len(data['annotations']) - 1


def test_keypoints_listed_in_another_order_are_read_in_the_models(pose_layouts, tmp_path):
    """A YOLO-pose export whose keypoints come in another order: ``model_keypoints`` (set from the model file by
    tools/test.py and the exporter through ``bind_model_classes``) reorders them by name."""
    from sscma.utils import load_config
    from sscma.utils.class_names import bind_model_classes
    _, yolo = pose_layouts
    root = tmp_path / 'export'
    shutil.copytree(yolo, root)
    names = list(COCO_KEYPOINTS)
    perm = list(reversed(range(17)))
    data = yaml.safe_load((root / 'data.yaml').read_text())
    data['kpt_names'] = {0: [names[i] for i in perm]}
    data['flip_idx'] = [perm.index(data['flip_idx'][i]) for i in perm]
    (root / 'data.yaml').write_text(yaml.safe_dump(data))
    for label in (root / 'labels' / 'valid').glob('*.txt'):
        lines = []
        for line in label.read_text().splitlines():
            v = line.split()
            kp = np.asarray(v[5:], dtype=object).reshape(17, 3)[perm]
            lines.append(' '.join(v[:5] + list(kp.reshape(-1))))
        label.write_text('\n'.join(lines) + '\n')

    cfg = load_config('configs/pose/yoloxpose_nano_192.py', {'data_root': str(root)})
    bind_model_classes(cfg, ['person'], 'model.pth', ('val_dataloader', ), keypoints=names)
    assert cfg.val_dataloader.dataset.model_keypoints == names
    ref = PoseDataset(data_root=str(yolo), split='valid', pipeline=[], test_mode=True)
    ds = PoseDataset(data_root=str(root), split='valid', pipeline=[], test_mode=True,
                     model_keypoints=cfg.val_dataloader.dataset.model_keypoints)
    assert ds.keypoint_names == tuple(names) and ds.metainfo['flip_indices'] == ref.metainfo['flip_indices']
    a, b = _annotations(ref), _annotations(ds)
    for name in a:
        assert [o['keypoints'] for o in a[name]] == [o['keypoints'] for o in b[name]]
    shuffled = PoseDataset(data_root=str(root), split='valid', pipeline=[], test_mode=True)
    assert shuffled.keypoint_names == tuple(names[i] for i in perm)
