import hashlib
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from sscma.datasets import DetectionDataset, ImageFolderDataset, ensure_digits_folder, ensure_fomo_coco
from sscma.datasets.builtin import _generate_once, default_data_home

DIGIT_SPLITS = ('training', 'validation', 'test')
FOMO_SPLITS = (('train', 600), ('valid', 150), ('test', 150))
ANN = '_annotations.coco.json'


@pytest.fixture(scope='module')
def digits_root(tmp_path_factory):
    return ensure_digits_folder(tmp_path_factory.mktemp('b') / 'digits')


@pytest.fixture(scope='module')
def fomo_root(tmp_path_factory):
    return ensure_fomo_coco(tmp_path_factory.mktemp('b') / 'fomo')


def _md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_digits_layout_and_labels(digits_root):
    assert json.loads((digits_root / 'labels.json').read_text()) == {str(i): i for i in range(10)}
    assert sorted(p.name for p in digits_root.iterdir()) == ['labels.json', 'test', 'training', 'validation']
    img = cv2.imread(str(next((digits_root / 'training' / '0').glob('*.png'))), cv2.IMREAD_UNCHANGED)
    assert img.shape == (32, 32, 3) and img.dtype == np.uint8 and img.max() > 200 and img.min() < 30


def test_digits_splits_disjoint_stratified_complete(digits_root):
    hashes, counts = {}, {}
    for split in DIGIT_SPLITS:
        assert sorted(p.name for p in (digits_root / split).iterdir()) == [str(i) for i in range(10)]
        files = sorted((digits_root / split).glob('*/*.png'))
        hashes[split] = {_md5(p) for p in files}
        assert len(hashes[split]) == len(files)  # no duplicate image inside a split
        counts[split] = {c: len(list((digits_root / split / str(c)).glob('*.png'))) for c in range(10)}
    assert sum(len(h) for h in hashes.values()) == 1797
    assert not (hashes['training'] & hashes['validation'] or hashes['training'] & hashes['test']
                or hashes['validation'] & hashes['test'])
    total = {s: sum(c.values()) for s, c in counts.items()}
    assert 1230 <= total['training'] <= 1290 and 250 <= total['validation'] <= 290 and 250 <= total['test'] <= 290
    for split, per_class in counts.items():  # stratified: every class in the split's proportion
        for c, n in per_class.items():
            assert abs(n / total[split] - 0.1) < 0.02, (split, c, n)
    ds = ImageFolderDataset(data_root=str(digits_root), split='validation', num_classes=10)
    assert len(ds) == total['validation'] and {d['gt_label'] for d in ds.load_data_list()} == set(range(10))


def test_fomo_coco_content(fomo_root):
    assert sorted(p.name for p in fomo_root.iterdir()) == ['test', 'train', 'valid']
    totals = dict(coin=0, face=0, empty=0, images=0)
    for split, n in FOMO_SPLITS:
        raw = json.loads((fomo_root / split / ANN).read_text())
        assert list(raw) == ['info', 'licenses', 'categories', 'images', 'annotations']
        assert [(c['id'], c['name'], c['supercategory']) for c in raw['categories']] == [
            (0, 'objects', 'none'), (1, 'coin', 'objects'), (2, 'face', 'objects')]
        coco = COCO(str(fomo_root / split / ANN))
        assert len(coco.getImgIds()) == n
        assert sorted(p.name for p in (fomo_root / split).glob('*.jpg')) == sorted(
            im['file_name'] for im in coco.loadImgs(coco.getImgIds()))
        anns = coco.loadAnns(coco.getAnnIds())
        assert [a['id'] for a in anns] == list(range(len(anns)))
        for a in anns:
            x, y, w, h = a['bbox']
            assert all(isinstance(v, float) for v in a['bbox'])
            assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= 96 and y + h <= 96
            assert 3 <= max(w, h) <= 29 and a['area'] == w * h
            assert a['iscrowd'] == 0 and a['segmentation'] == [] and a['category_id'] in (1, 2)
        per_image = [len(coco.getAnnIds(imgIds=i)) for i in coco.getImgIds()]
        assert max(per_image) <= 5
        empty = per_image.count(0)
        assert 0 < empty < 0.12 * n
        per_class = {c: sum(a['category_id'] == c for a in anns) for c in (1, 2)}
        assert min(per_class.values()) > 0.35 * len(anns)
        # objects cut by the border: their box touches it (a few uncut ones may too)
        border = [a for a in anns if a['bbox'][0] == 0 or a['bbox'][1] == 0 or a['bbox'][0] + a['bbox'][2] == 96
                  or a['bbox'][1] + a['bbox'][3] == 96]
        assert 0.05 * len(anns) < len(border) < 0.3 * len(anns)
        totals['coin'] += per_class[1]
        totals['face'] += per_class[2]
        totals['empty'] += empty
        totals['images'] += n
    assert 2.0 < (totals['coin'] + totals['face']) / totals['images'] < 3.5
    img = cv2.imread(str(fomo_root / 'train' / 'train_0000.jpg'))
    assert img.shape == (96, 96, 3)
    ds = DetectionDataset(format='coco', data_root=str(fomo_root), split='train', num_classes=2)
    assert ds.metainfo['classes'] == ('coin', 'face')  # Roboflow's placeholder category 0 is not a class


def test_fomo_boxes_hold_real_content(fomo_root):
    coco = COCO(str(fomo_root / 'valid' / ANN))
    inside_std = []
    for a in coco.loadAnns(coco.getAnnIds()):
        x, y, w, h = map(int, a['bbox'])
        img = cv2.imread(str(fomo_root / 'valid' / coco.loadImgs(a['image_id'])[0]['file_name']))
        inside_std.append(img[y:y + h, x:x + w].std())
    assert np.median(inside_std) > 10  # real content, not flat patches


def test_fomo_deterministic_and_idempotent(fomo_root, tmp_path):
    again = ensure_fomo_coco(tmp_path / 'fomo')
    for split, _ in FOMO_SPLITS:
        assert (fomo_root / split / ANN).read_text() == (again / split / ANN).read_text()
    for name in ('train/train_0000.jpg', 'valid/valid_0042.jpg', 'test/test_0149.jpg'):
        assert _md5(fomo_root / name) == _md5(again / name)
    mtime = os.path.getmtime(again / 'train' / ANN)
    assert ensure_fomo_coco(again) == again
    assert os.path.getmtime(again / 'train' / ANN) == mtime
    assert not [p for p in os.listdir(tmp_path) if p.startswith('.')]  # no temporary folder left


def test_digits_idempotent(digits_root):
    label_file = digits_root / 'labels.json'
    mtime = os.path.getmtime(label_file)
    assert ensure_digits_folder(digits_root) == digits_root
    assert os.path.getmtime(label_file) == mtime


def test_generate_once_is_atomic(tmp_path):
    root = tmp_path / 'ds_v1'

    def killed(out):
        (out / 'half.txt').write_text('x')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _generate_once(root, killed)
    assert not root.exists() and os.listdir(tmp_path) == []  # nothing that could look complete

    calls = []

    def write(out):
        calls.append(out)
        (out / 'done.txt').write_text('ok')

    root.mkdir()  # an empty folder (e.g. made by the user) is filled, not taken as a dataset
    assert _generate_once(root, write) == root and (root / 'done.txt').read_text() == 'ok'
    assert _generate_once(root, write) == root and len(calls) == 1


def test_default_location_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv('SSCMA_DATA_HOME', str(tmp_path))
    assert default_data_home() == tmp_path
    monkeypatch.delenv('SSCMA_DATA_HOME')
    monkeypatch.setenv('SSCMA_HOME', str(tmp_path / 'home'))
    assert default_data_home() == tmp_path / 'home' / 'data'
    monkeypatch.delenv('SSCMA_HOME')
    assert default_data_home() == Path.home() / '.cache' / 'sscma' / 'data'
