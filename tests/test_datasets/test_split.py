"""sscma.datasets.split and tools/dataset_split.py: stratified splits that keep identical files together."""
import json
import os
import os.path as osp
import runpy
import shutil
import sys
from collections import Counter, defaultdict

import pytest

from sscma.datasets import DetectionDataset, ImageFolderDataset
from sscma.datasets.split import split_dataset
from sscma.datasets.split_common import assign_groups, file_sha1, split_targets
from sscma.utils import DatasetError

from ..conftest import write_class_folders, write_roboflow_coco

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SONY = ('training', 'validation', 'test')


def _files(root):
    return sorted(osp.join(d, f) for d, _, fs in os.walk(root) for f in fs)


def _hashes_by_split(out, splits):
    return {s: {file_sha1(p) for p in _files(osp.join(out, s)) if not p.endswith('.json')} for s in splits}


def test_split_targets_and_groups():
    assert split_targets(10, (0.7, 0.15, 0.15)) == [7, 2, 1]
    assert split_targets(6, (0.7, 0.15, 0.15)) == [4, 1, 1]
    assert split_targets(1, (0.7, 0.15, 0.15)) == [1, 0, 0]
    assert split_targets(5, (0.5, 0.5, 0.0)) == [3, 2, 0]
    groups = [('a', 1)] * 20 + [('b', 3)] + [('b', 1)] * 7
    assigned = assign_groups(groups, (0.5, 0.25, 0.25), seed=1)
    per = defaultdict(Counter)
    for (stratum, size), s in zip(groups, assigned):
        per[stratum][s] += size
    assert per['a'] == {0: 10, 1: 5, 2: 5}
    assert sum(per['b'].values()) == 10 and per['b'][0] >= 5
    assert assign_groups(groups, (0.5, 0.25, 0.25), seed=1) == assigned  # deterministic


def test_class_folders_with_planted_duplicates(tmp_path):
    src = write_class_folders(tmp_path / 'src', ['cat', 'dog', 'fox'], per_class=20, splits=('', ))
    # 4 extra copies: 2 of one cat image (same class), 1 of a dog image, and 1 of a fox image filed as cat
    for dst, orig in (('cat/dup_a.png', 'cat/cat_0.png'), ('cat/dup_b.png', 'cat/cat_0.png'),
                      ('dog/dup_c.png', 'dog/dog_3.png'), ('cat/fox_as_cat.png', 'fox/fox_5.png')):
        shutil.copy(osp.join(src, orig), osp.join(src, dst))
    out = str(tmp_path / 'out')
    report = split_dataset(src, out, (0.7, 0.15, 0.15), seed=0)

    assert report.kind == 'folder' and report.num_files == 64
    assert (report.duplicates, report.duplicate_groups, report.conflicting_groups) == (4, 3, 1)
    assert sorted(os.listdir(out)) == ['labels.json', 'test', 'training', 'validation']
    assert json.load(open(osp.join(out, 'labels.json'))) == {'cat': 0, 'dog': 1, 'fox': 2}
    hashes = _hashes_by_split(out, SONY)
    assert not (hashes['training'] & hashes['validation'] or hashes['training'] & hashes['test']
                or hashes['validation'] & hashes['test'])
    for a, b in ((('cat', 'dup_a.png'), ('cat', 'cat_0.png')), (('dog', 'dup_c.png'), ('dog', 'dog_3.png')),
                 (('cat', 'fox_as_cat.png'), ('fox', 'fox_5.png'))):
        where = [[s for s in SONY if osp.isfile(osp.join(out, s, *x))] for x in (a, b)]
        assert len(where[0]) == 1 and where[0] == where[1]  # placed once, together with its twin
    # every file kept exactly once, in its own class folder; stratified counts per class
    rows = dict(report.rows)
    assert sum(rows['total'].values()) == 64 and sum(rows['cat'].values()) == 23
    assert [rows['dog'].get(s, 0) for s in SONY] == split_targets(21, (0.7, 0.15, 0.15))  # 15 / 3 / 3
    # fox: 19 single files split exactly, plus fox_5 which follows its twin filed under cat
    fox = [rows['fox'].get(s, 0) - t for s, t in zip(SONY, split_targets(19, (0.7, 0.15, 0.15)))]
    assert sorted(fox) == [0, 0, 1]
    for cls, n in (('cat', 23), ('dog', 21), ('fox', 20)):
        assert sum(len(os.listdir(osp.join(out, s, cls))) for s in SONY) == n
    assert sorted(file_sha1(p) for p in _files(out) if p.endswith('.png')) == sorted(
        file_sha1(p) for p in _files(src))
    ds = ImageFolderDataset(data_root=out, split='validation', num_classes=3)
    assert len(ds) == 10 and ds.metainfo['classes'] == ('cat', 'dog', 'fox')
    assert not [f for f in os.listdir(tmp_path) if f.startswith('.out.')]  # no temporary folder left


def test_split_layout_is_merged_and_labels_kept(folder_root, tmp_path):
    out = str(tmp_path / 'resplit')
    report = split_dataset(folder_root, out, (0.5, 0.5), seed=3)
    assert report.num_files == 54 and report.splits == ['training', 'validation']
    assert not osp.exists(osp.join(out, 'test'))
    # the source's labels.json fixes the ids (a trained model keeps its class order)
    assert json.load(open(osp.join(out, 'labels.json'))) == {'dog': 0, 'cat': 1, 'fox': 2}
    # the same file names in the three source splits do not overwrite each other
    assert len([p for p in _files(out) if p.endswith('.png')]) == 54
    assert dict(report.rows)['total'] == {'training': 27, 'validation': 27}
    again = split_dataset(folder_root, str(tmp_path / 'again'), (0.5, 0.5), seed=3)
    assert again.rows == report.rows
    assert sorted(os.listdir(osp.join(out, 'training', 'cat'))) == sorted(
        os.listdir(str(tmp_path / 'again' / 'training' / 'cat')))


def _load(path):
    with open(path) as f:
        return json.load(f)


def test_coco_roboflow_export_with_duplicates(tmp_path):
    src = write_roboflow_coco(tmp_path / 'src', n_images=(12, 6, 6))
    # plant: valid gets a byte-identical copy of train/img_001.jpg (with the same objects) under a new name
    shutil.copy(osp.join(src, 'train', 'img_001.jpg'), osp.join(src, 'valid', 'copy_of_001.jpg'))
    train, valid = _load(osp.join(src, 'train', '_annotations.coco.json')), _load(
        osp.join(src, 'valid', '_annotations.coco.json'))
    valid['images'].append(dict(id=100, file_name='copy_of_001.jpg', width=96, height=96))
    valid['annotations'] += [dict(a, id=1000 + k, image_id=100) for k, a in enumerate(train['annotations'])
                             if a['image_id'] == 1]
    json.dump(valid, open(osp.join(src, 'valid', '_annotations.coco.json'), 'w'))
    sources = [_load(osp.join(src, s, '_annotations.coco.json')) for s in ('train', 'valid', 'test')]

    out = str(tmp_path / 'out')
    report = split_dataset(src, out, (0.5, 0.25, 0.25), seed=0)
    assert report.kind == 'coco' and report.num_files == 25
    assert (report.duplicates, report.duplicate_groups) == (1, 1)
    splits = ('train', 'valid', 'test')
    data = {s: _load(osp.join(out, s, '_annotations.coco.json')) for s in splits}
    for s in splits:
        d = data[s]
        assert d['categories'] == sources[0]['categories']  # ids 0 (placeholder), 7, 3 kept
        ids = [i['id'] for i in d['images']]
        assert ids == list(range(len(ids)))
        assert [a['id'] for a in d['annotations']] == list(range(1, len(d['annotations']) + 1))
        assert {a['image_id'] for a in d['annotations']} <= set(ids)
        assert {a['category_id'] for a in d['annotations']} <= {7, 3}
        assert sorted(os.listdir(osp.join(out, s))) == sorted(['_annotations.coco.json'] +
                                                              [i['file_name'] for i in d['images']])
    # each image carries exactly its source objects (matched by file content)
    src_objects = {}
    for split, d in zip(splits, sources):
        for img in d['images']:
            key = file_sha1(osp.join(src, split, img['file_name']))
            src_objects[key] = sorted((a['category_id'], tuple(a['bbox'])) for a in d['annotations']
                                      if a['image_id'] == img['id'])
    for s in splits:
        for img in data[s]['images']:
            got = sorted((a['category_id'], tuple(a['bbox'])) for a in data[s]['annotations']
                         if a['image_id'] == img['id'])
            assert got == src_objects[file_sha1(osp.join(out, s, img['file_name']))]
    hashes = _hashes_by_split(out, splits)
    assert not (hashes['train'] & hashes['valid'] or hashes['train'] & hashes['test']
                or hashes['valid'] & hashes['test'])
    assert sum(len(d['images']) for d in data.values()) == 25
    assert sum(len(d['annotations']) for d in data.values()) == sum(len(d['annotations']) for d in sources)
    # images without objects (every 4th: 3 + 1 + 1) are a stratum of their own
    empty = [sum(1 for i in data[s]['images'] if not any(a['image_id'] == i['id'] for a in data[s]['annotations']))
             for s in splits]
    assert empty == split_targets(5, (0.5, 0.25, 0.25))
    rows = dict(report.rows)
    assert rows['images (no objects)'] == dict(zip(splits, empty))
    assert rows['images'] == {s: len(data[s]['images']) for s in splits}
    ds = DetectionDataset(format='coco', data_root=out, split='valid', num_classes=2)
    assert ds.metainfo['classes'] == ('block', 'disc') and len(ds) == len(data['valid']['images'])


def test_plain_coco_json_source(roboflow_root, tmp_path):
    ann = osp.join(roboflow_root, 'train', '_annotations.coco.json')
    report = split_dataset(ann, str(tmp_path / 'out'), (0.75, 0.25), seed=0)
    assert report.kind == 'coco' and report.num_files == 8 and report.splits == ['train', 'valid']
    assert sorted(os.listdir(tmp_path / 'out')) == ['train', 'valid']


def test_mistakes_are_clear_and_touch_nothing(tmp_path, folder_root):
    taken = tmp_path / 'taken'
    taken.mkdir()
    (taken / 'keep.txt').write_text('x')
    with pytest.raises(DatasetError, match=r'output .*taken already exists and is not empty'):
        split_dataset(folder_root, str(taken))
    assert os.listdir(taken) == ['keep.txt']
    with pytest.raises(DatasetError, match=r'ratios=\[0.5, 0.2, 0.0\] sum to 0.7'):
        split_dataset(folder_root, str(tmp_path / 'a'), (0.5, 0.2))
    with pytest.raises(DatasetError, match='inside the source'):
        split_dataset(folder_root, osp.join(folder_root, 'resplit'))
    (tmp_path / 'empty' / 'cat').mkdir(parents=True)
    with pytest.raises(DatasetError, match='no images'):
        split_dataset(str(tmp_path / 'empty'), str(tmp_path / 'b'))
    bad = write_roboflow_coco(tmp_path / 'broken', n_images=(4, 2, 2))
    os.remove(osp.join(bad, 'valid', 'img_001.jpg'))
    with pytest.raises(DatasetError, match=r'valid.*_annotations.coco.json: 1 listed images are not in'):
        split_dataset(bad, str(tmp_path / 'c'))
    assert sorted(os.listdir(tmp_path)) == ['broken', 'empty', 'taken']  # no output, no temporary folder


def test_tool_prints_table(folder_root, tmp_path, monkeypatch, capsys):
    out = str(tmp_path / 'out')
    monkeypatch.setattr(sys, 'argv', ['dataset_split.py', folder_root, out, '--ratios', '0.6', '0.2', '0.2',
                                      '--seed', '1'])
    runpy.run_path(osp.join(REPO, 'tools', 'dataset_split.py'), run_name='__main__')
    text = capsys.readouterr().out
    assert f'54 images from {folder_root} -> {out}' in text
    assert 'training  validation  test  total' in text
    assert 'duplicates: 0 files' in text
    assert [line.split() for line in text.splitlines() if line.startswith('total')] == [['total', '33', '12', '9',
                                                                                        '54']]
    monkeypatch.setattr(sys, 'argv', ['dataset_split.py', folder_root, out])
    with pytest.raises(SystemExit, match=r'^error: output .* already exists'):
        runpy.run_path(osp.join(REPO, 'tools', 'dataset_split.py'), run_name='__main__')


# ------------------------------------------------------------------------------------------ YOLO and VOC
def _scene_boxes(ds):
    """{image content sha1: sorted (label, rounded box)} of a DetectionDataset."""
    return {file_sha1(d['img_path']): sorted((i['bbox_label'], tuple(round(v, 2) for v in i['bbox']))
                                             for i in d['instances']) for d in ds}


@pytest.mark.parametrize('fmt', ['yolo_roboflow', 'yolo', 'voc', 'labelimg'])
def test_yolo_and_voc_keep_their_format(fmt, tmp_path):
    from ..detection_data import CLASSES, write_detection_scenes
    src = str(tmp_path / 'src')
    write_detection_scenes(src, fmt, dict(train=12, valid=6, test=6))
    yolo = fmt.startswith('yolo')
    # plant a byte-identical copy (with its annotation) of a train image into valid under a new name
    if fmt == 'yolo_roboflow':
        img, lbl = osp.join(src, 'train', 'images', 'train_001.jpg'), osp.join(src, 'train', 'labels', 'train_001.txt')
        shutil.copy(img, osp.join(src, 'valid', 'images', 'copy.jpg'))
        shutil.copy(lbl, osp.join(src, 'valid', 'labels', 'copy.txt'))
    elif fmt == 'labelimg':
        shutil.copy(osp.join(src, 'train', 'train_001.jpg'), osp.join(src, 'valid', 'copy.jpg'))
        shutil.copy(osp.join(src, 'train', 'train_001.xml'), osp.join(src, 'valid', 'copy.xml'))
    splits_in = ('train', 'valid', 'test')
    before = {}
    for s in splits_in:
        before.update(_scene_boxes(DetectionDataset(data_root=src, split=s, test_mode=True)))
    out = str(tmp_path / 'out')
    report = split_dataset(src, out, (0.5, 0.25, 0.25), seed=0)
    planted = fmt in ('yolo_roboflow', 'labelimg')
    assert report.kind == ('yolo' if yolo else 'voc') and report.num_files == 24 + planted
    assert report.duplicates == int(planted) and report.splits == ['train', 'val', 'test']
    assert report.classes == list(CLASSES)
    if yolo:
        assert sorted(os.listdir(out)) == ['data.yaml', 'images', 'labels']
        assert sorted(os.listdir(osp.join(out, 'images'))) == ['test', 'train', 'val']
    else:
        assert sorted(os.listdir(out)) == ['Annotations', 'ImageSets', 'JPEGImages', 'labels.txt']
    after, counts = {}, {}
    for s in ('train', 'val', 'test'):
        ds = DetectionDataset(data_root=out, split=s, test_mode=True)
        assert ds.format == ('yolo' if yolo else 'voc') and ds.metainfo['classes'] == CLASSES
        boxes = _scene_boxes(ds)
        assert not set(boxes) & set(after)  # identical files never in two splits
        after.update(boxes)
        counts[s] = len(ds)
    assert after == before  # every image kept once, with exactly its objects
    assert sum(counts.values()) == 24 + planted  # the planted copy is kept, in its twin's split (same sha1 key)
    assert dict(report.rows)['images (no objects)'] == dict(zip(('train', 'val', 'test'),
                                                                 split_targets(5, (0.5, 0.25, 0.25))))
    assert not [f for f in os.listdir(tmp_path) if f.startswith('.out.')]


def test_voc_single_set_and_yolo_errors(tmp_path):
    from ..detection_data import write_detection_scenes
    src = tmp_path / 'one'
    write_detection_scenes(src, 'labelimg', dict(train=8))
    for f in os.listdir(src / 'train'):  # a labelImg folder: images and xml side by side, no splits
        shutil.move(str(src / 'train' / f), str(src / f))
    os.rmdir(src / 'train')
    report = split_dataset(str(src), str(tmp_path / 'out'), (0.75, 0.25), seed=0)
    assert report.kind == 'voc' and report.num_files == 8 and report.splits == ['train', 'val']
    ids = [open(tmp_path / 'out' / 'ImageSets' / 'Main' / f'{s}.txt').read().split() for s in ('train', 'val')]
    assert sorted(ids[0] + ids[1]) == [f'train_{i:03d}' for i in range(8)] and len(ids[1]) >= 1
    bad = tmp_path / 'bad'
    write_detection_scenes(bad, 'yolo', dict(train=4, valid=2))
    (bad / 'labels' / 'val' / 'valid_000.txt').write_text('7 0.5 0.5 0.1 0.1\n')
    with pytest.raises(DatasetError, match=r"valid_000\.txt:1: class '7' is not an integer id in 0\.\.2"):
        split_dataset(str(bad), str(tmp_path / 'out2'))
    assert not osp.exists(tmp_path / 'out2')
