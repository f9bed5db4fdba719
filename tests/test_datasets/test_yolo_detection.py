"""YOLO txt exports (Ultralytics and Roboflow layouts) read by DetectionDataset."""
import os
import os.path as osp

import numpy as np
import pytest
import yaml
from PIL import Image

from sscma.datasets import DetectionDataset
from sscma.datasets.yolo_detection import yolo_label_path
from sscma.datasets.yolo_labels import parse_yolo_labels
from sscma.utils import DatasetError

from ..detection_data import CLASSES, write_detection_scenes


def _boxes(ds):
    return {osp.basename(ds.get_data_info(k)['img_path']): [(i['bbox_label'], i['bbox'])
                                                            for i in ds.get_data_info(k)['instances']]
            for k in range(len(ds))}


def _expected(scenes, split):
    return {sc['name'] + '.jpg': [(label, list(map(float, box))) for label, box in sc['objects']]
            for sc in scenes[split]}


def _close(got, want):
    assert got.keys() == want.keys()
    for name in want:
        assert [g[0] for g in got[name]] == [w[0] for w in want[name]], name
        np.testing.assert_allclose([g[1] for g in got[name]] or np.zeros((0, 4)),
                                   [w[1] for w in want[name]] or np.zeros((0, 4)), atol=1e-3, err_msg=name)


@pytest.mark.parametrize('fmt', ['yolo', 'yolo_dict', 'yolo_roboflow'])
def test_exports_give_the_scene_boxes(fmt, tmp_path):
    scenes = write_detection_scenes(tmp_path, fmt)
    for split in ('train', 'valid', 'val', 'test'):
        ds = DetectionDataset(data_root=str(tmp_path), split=split, num_classes=3, test_mode=split != 'train')
        assert ds.format == 'yolo' and ds.metainfo['classes'] == CLASSES
        _close(_boxes(ds), _expected(scenes, 'valid' if split == 'val' else split))
        sizes = {osp.basename(d['img_path']): (d['width'], d['height']) for d in ds}
        assert sizes == {sc['name'] + '.jpg': sc['size'] for sc in scenes['valid' if split == 'val' else split]}
    # background: train_003 has an empty label file, train_007 none; both kept
    train = DetectionDataset(data_root=str(tmp_path), split='train')
    assert sum(not d['instances'] for d in train) == 2 and len(train) == 8
    assert len(DetectionDataset(data_root=str(tmp_path), split='train', keep_empty=False)) == 6


def test_label_path_rule():
    assert yolo_label_path('/d/images/train/a.b.jpg') == '/d/labels/train/a.b.txt'
    assert yolo_label_path('/images/x/images/train/a.png') == '/images/x/labels/train/a.txt'  # the last /images/


def test_list_files_and_lists_of_folders(tmp_path):
    scenes = write_detection_scenes(tmp_path, 'yolo', dict(train=6, valid=3))
    with open(tmp_path / 'train.txt', 'w') as f:
        f.write('\n'.join(f'./images/train/{sc["name"]}.jpg' for sc in scenes['train'][:4]) + '\n')
    data = yaml.safe_load((tmp_path / 'data.yaml').read_text())
    data.update(train='train.txt', val=['images/val', 'images/train'])
    (tmp_path / 'data.yaml').write_text(yaml.safe_dump(data))
    assert len(DetectionDataset(data_root=str(tmp_path), split='train')) == 4
    assert len(DetectionDataset(data_root=str(tmp_path), split='valid', test_mode=True)) == 9


def test_no_yaml_with_classes_txt(tmp_path):
    scenes = write_detection_scenes(tmp_path, 'yolo_roboflow', dict(train=4, valid=2))
    os.remove(tmp_path / 'data.yaml')
    with pytest.raises(DatasetError, match='no data.yaml .* nor a classes.txt'):
        DetectionDataset(data_root=str(tmp_path), split='train')
    (tmp_path / 'classes.txt').write_text('\n'.join(CLASSES) + '\n')
    ds = DetectionDataset(data_root=str(tmp_path), split='valid', test_mode=True)
    _close(_boxes(ds), _expected(scenes, 'valid'))


def test_exif_rotated_image_uses_upright_size(tmp_path):
    write_detection_scenes(tmp_path, 'yolo', dict(train=2))
    # a phone photo stored 80x40 with EXIF orientation 6 (rotate 90): upright it is 40x80
    path = tmp_path / 'images' / 'train' / 'phone.jpg'
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new('RGB', (80, 40), (90, 90, 90)).save(path, exif=exif.tobytes())
    (tmp_path / 'labels' / 'train' / 'phone.txt').write_text('1 0.5 0.25 0.5 0.25\n')
    ds = DetectionDataset(data_root=str(tmp_path), split='train')
    info = next(d for d in ds if d['img_path'].endswith('phone.jpg'))
    assert (info['width'], info['height']) == (40, 80)
    np.testing.assert_allclose(info['instances'][0]['bbox'], [10, 10, 30, 30])
    import cv2
    assert cv2.imread(str(path)).shape[:2] == (80, 40)  # what LoadImage sees: upright, height 80


def test_polygons_and_rounding(tmp_path):
    label = tmp_path / 'a.txt'
    label.write_text('2 0.1 0.2 0.5 0.1 0.4 0.6 0.2 0.5\n\n0 0.5 0.5 1.004 0.2\n')
    objects = parse_yolo_labels(str(label), 3, 200, 100)
    assert objects[0][0] == 2
    np.testing.assert_allclose(objects[0][1], [20, 10, 100, 60])  # bounding box of the polygon
    np.testing.assert_allclose(objects[1][1], [0, 40, 200, 60])  # 1.004 is rounding: clipped


@pytest.mark.parametrize('line, pattern', [
    ('3 0.5 0.5 0.2 0.2', r"a\.txt:2: class '3' is not an integer id in 0\.\.2 \(3 names\)"),
    ('x 0.5 0.5 0.2 0.2', r'a\.txt:2: values must be finite numbers'),
    ('0.5 0.5 0.5 0.2 0.2', r"class '0\.5' is not an integer id"),
    ('-1 0.5 0.5 0.2 0.2', r"class '-1' is not an integer id"),
    ('0 0.5 0.5 0.2', r'a\.txt:2: expected "class cx cy w h" .* got 4 values'),
    ('0 0.5 0.5 0.2 0.2 0.9', r'got 6 values'),
    ('0 0.5 nan 0.2 0.2', r'values must be finite numbers'),
    ('0 50 40 20 10', r'a\.txt:2: coordinates must be normalised to \[0, 1\] \(divided by the image size 200x100\), '
     r'got 50'),
    ('0 0.5 0.5 0 0.2', r'a\.txt:2: box width and height must be > 0, got w=0 h=0\.2'),
    ('0 0.5 0.5 -0.1 0.2', r'got -0\.1'),
    ('1 0.1 0.1 0.1 0.1 0.1 0.1', r'a\.txt:2: the box has no area inside the image'),
])
def test_label_line_mistakes(line, pattern, tmp_path):
    label = tmp_path / 'a.txt'
    label.write_text(f'0 0.5 0.5 0.2 0.2\n{line}\n')
    with pytest.raises(DatasetError, match=pattern) as e:
        parse_yolo_labels(str(label), 3, 200, 100)
    assert '\n' not in str(e.value)


def _edit_yaml(root, **changes):
    path = root / 'data.yaml'
    data = yaml.safe_load(path.read_text())
    for k, v in changes.items():
        if v is KeyError:
            data.pop(k, None)
        else:
            data[k] = v
    path.write_text(yaml.safe_dump(data))


@pytest.mark.parametrize('change, pattern', [
    (dict(names=KeyError), r'data\.yaml: "names" must be a non-empty list of class names'),
    (dict(names='block disc ring'), r'"names" must be a non-empty list .* got block disc ring'),
    (dict(names=['block', None, 'ring']), r'data\.yaml: class names must be non-empty text, got \[None\]'),
    (dict(names={0: 'block', 2: 'ring'}), r'"names" as a mapping needs the keys 0\.\.1, got \[0, 2\]'),
    (dict(names=['a', 'a', 'b']), r"class names must be unique, repeated: \['a'\]"),
    (dict(nc=4), r'data\.yaml: nc=4 but "names" lists 3 classes'),
    (dict(train='images/training'), r'data\.yaml: "train: images/training" does not exist \(looked for'),
    (dict(train=['images/train', 3]), r'"train" must be a path or a list of paths, got'),
    (dict(train=KeyError), r'data\.yaml: no "train" entry for split "train"'),
    (dict(path=['x']), r'"path" must be a folder path'),
])
def test_yaml_mistakes(change, pattern, tmp_path):
    write_detection_scenes(tmp_path, 'yolo', dict(train=4, valid=2))
    _edit_yaml(tmp_path, **change)
    with pytest.raises(DatasetError, match=pattern) as e:
        DetectionDataset(data_root=str(tmp_path), split='train')
    assert '\n' not in str(e.value)


def test_yaml_python_tag_and_garbage(tmp_path):
    write_detection_scenes(tmp_path, 'yolo', dict(train=4, valid=2))
    path = tmp_path / 'data.yaml'
    path.write_text(path.read_text() + "evil: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(DatasetError, match=r"data\.yaml: line \d+ not a plain YAML file \(could not determine a "
                       r"constructor for the tag 'tag:yaml.org,2002:python/object/apply:os.system'\)"):
        DetectionDataset(data_root=str(tmp_path), split='train')
    path.write_text('names: [a, b\ntrain: x\n')
    with pytest.raises(DatasetError, match=r'data\.yaml: line \d+ not a plain YAML file'):
        DetectionDataset(data_root=str(tmp_path), split='train')
    path.write_text('- a\n- b\n')
    with pytest.raises(DatasetError, match=r'expected a mapping with "names"'):
        DetectionDataset(data_root=str(tmp_path), split='train')


def test_paths_may_not_leave_the_dataset(tmp_path):
    root = tmp_path / 'data'
    write_detection_scenes(root, 'yolo', dict(train=4, valid=2))
    outside = tmp_path / 'secret'
    outside.mkdir()
    (outside / 'x.txt').write_text('0 0.5 0.5 0.1 0.1\n')
    label = root / 'labels' / 'train' / 'train_000.txt'
    os.remove(label)
    os.symlink(outside / 'x.txt', label)
    with pytest.raises(DatasetError, match=r'label of .*train_000\.jpg: .*train_000\.txt points outside the dataset '
                       r'root .* \(resolves to .*secret/x\.txt\)'):
        DetectionDataset(data_root=str(root), split='train')
    os.remove(label)
    (root / 'list.txt').write_text('../secret/y.jpg\n')
    Image.new('RGB', (8, 8)).save(outside / 'y.jpg')
    _edit_yaml(root, train='list.txt')
    with pytest.raises(DatasetError, match=r'data\.yaml: .*secret/y\.jpg points outside the dataset root'):
        DetectionDataset(data_root=str(root), split='train')
    _edit_yaml(root, train=str(outside))
    with pytest.raises(DatasetError, match=r'"train: .*secret": .*secret points outside the dataset root'):
        DetectionDataset(data_root=str(root), split='train')


def test_missing_listed_image_names_the_line(tmp_path):
    write_detection_scenes(tmp_path, 'yolo', dict(train=4, valid=2))
    (tmp_path / 'list.txt').write_text('images/train/train_000.jpg\nimages/train/gone.jpg\n')
    _edit_yaml(tmp_path, train='list.txt')
    with pytest.raises(DatasetError, match=r'list\.txt:2: image .*gone\.jpg does not exist \(1 of 2 listed'):
        DetectionDataset(data_root=str(tmp_path), split='train')
