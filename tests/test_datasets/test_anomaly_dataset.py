"""AnomalyDataset: the MVTec-AD layout, plain good/bad folders, and the errors for what is neither."""
import os.path as osp

import cv2
import numpy as np
import pytest

from sscma.datasets import AnomalyDataset
from sscma.utils.errors import DatasetError


def img(path, w=30, h=20, value=100):
    import os
    os.makedirs(osp.dirname(path), exist_ok=True)
    cv2.imwrite(str(path), np.full((h, w, 3), value, np.uint8))


def mvtec(root, masks=True):
    for i in range(4):
        img(root / 'train' / 'good' / f'{i:03d}.png')
    for i in range(5):
        img(root / 'test' / 'good' / f'{i:03d}.png')
    for defect in ('crack', 'hole'):
        for i in range(3):
            img(root / 'test' / defect / f'{i:03d}.png')
            if masks:
                img(root / 'ground_truth' / defect / f'{i:03d}_mask.png', value=255)
    return root


def load(root, split, **kw):
    return AnomalyDataset(data_root=str(root), split=split, **kw).load_data_list()


def test_mvtec_layout_val_and_test_are_disjoint_halves_of_test(tmp_path):
    root = mvtec(tmp_path / 'bottle')
    train = load(root, 'train')
    assert len(train) == 4 and {d['gt_label'] for d in train} == {0}
    val, test = load(root, 'val'), load(root, 'test')
    val_files, test_files = {d['img_path'] for d in val}, {d['img_path'] for d in test}
    assert not val_files & test_files and len(val_files | test_files) == 11
    assert sorted(d['defect'] for d in val) == ['crack', 'crack', 'good', 'good', 'good', 'hole', 'hole']
    for d in val + test:
        if d['gt_label']:
            stem = osp.splitext(osp.basename(d['img_path']))[0]
            assert d['mask_path'] == str(root / 'ground_truth' / d['defect'] / f'{stem}_mask.png')
        else:
            assert d['defect'] == 'good' and d['mask_path'] == ''


def test_plain_good_bad_folders_with_their_own_val(tmp_path):
    for split, n in (('train', 3), ('valid', 2), ('test', 2)):
        for i in range(n):
            img(tmp_path / split / 'OK' / f'{i}.jpg')
            img(tmp_path / split / 'NG' / f'{i}.jpg')
    train = load(tmp_path, 'train')  # the anomalous training images are left out, with a warning
    assert len(train) == 3 and all(d['defect'] == 'OK' for d in train)
    val = load(tmp_path, 'val')
    assert len(val) == 4 and all('valid' in d['img_path'] for d in val)
    assert {(d['defect'], d['gt_label'], d['mask_path']) for d in val} == {('OK', 0, ''), ('NG', 1, '')}
    assert len(load(tmp_path, 'test')) == 4  # a val folder exists: test is the whole test folder


def test_no_normal_training_images_is_refused_in_one_line(tmp_path):
    img(tmp_path / 'train' / 'scratch' / '0.png')
    img(tmp_path / 'test' / 'good' / '0.png')
    with pytest.raises(DatasetError) as e:
        load(tmp_path, 'train')
    assert '\n' not in str(e.value)
    assert 'no normal training images: expected' in str(e.value) and "found folders ['scratch']" in str(e.value)


def test_missing_mask_names_the_file(tmp_path):
    root = mvtec(tmp_path / 'cable')
    import os
    os.remove(root / 'ground_truth' / 'hole' / '001_mask.png')
    with pytest.raises(DatasetError, match=r'hole/001.png has no mask: expected .*001_mask.png'):
        load(root, 'test')


def test_other_layouts_are_refused(tmp_path):
    img(tmp_path / 'train' / 'images' / '0.jpg')
    (tmp_path / 'train' / 'labels').mkdir()
    with pytest.raises(DatasetError, match='a detection dataset layout'):
        load(tmp_path, 'train')
    with pytest.raises(DatasetError, match=r'no "train" folder .* expected the MVTec-AD layout'):
        load(tmp_path / 'train' / 'images', 'train')
    with pytest.raises(DatasetError, match='was not trained for anomaly detection'):
        AnomalyDataset(data_root=str(mvtec(tmp_path / 'x')), split='test', model_classes=['cat', 'dog'])
