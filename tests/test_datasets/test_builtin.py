import json
import os

import pytest
from pycocotools.coco import COCO

from sscma.datasets import CocoDetectionDataset, ImageFolderDataset, ensure_digits_folder, ensure_fomo_coco


@pytest.fixture(scope='module')
def digits_root(tmp_path_factory):
    return ensure_digits_folder(tmp_path_factory.mktemp('b') / 'digits')


@pytest.fixture(scope='module')
def fomo_root(tmp_path_factory):
    return ensure_fomo_coco(tmp_path_factory.mktemp('b') / 'fomo')


def test_digits_splits_disjoint_and_complete(digits_root):
    assert json.load(open(digits_root / 'labels.json')) == {str(i): i for i in range(10)}
    sizes = {}
    for split in ('training', 'validation', 'test'):
        ds = ImageFolderDataset(data_root=str(digits_root), split=split, num_classes=10)
        sizes[split] = len(ds)
        assert {d['gt_label'] for d in ds.load_data_list()} == set(range(10))
    assert sum(sizes.values()) == 1797
    assert 1200 < sizes['training'] < 1300
    files = [set(os.listdir(digits_root / s / '3')) for s in ('training', 'validation', 'test')]
    assert not (files[0] & files[1]) and not (files[0] & files[2]) and not (files[1] & files[2])


def test_fomo_coco_content(fomo_root):
    for split, n in (('train', 600), ('valid', 150), ('test', 150)):
        coco = COCO(str(fomo_root / split / '_annotations.coco.json'))
        assert len(coco.getImgIds()) == n
        anns = coco.loadAnns(coco.getAnnIds())
        for a in anns:
            x, y, w, h = a['bbox']
            assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= 96 and y + h <= 96
            assert 1 <= max(w, h) <= 29
        per_class = {c: sum(a['category_id'] == c for a in anns) for c in (1, 2)}
        assert min(per_class.values()) > 0.35 * len(anns)
        empty = [i for i in coco.getImgIds() if not coco.getAnnIds(imgIds=i)]
        assert 0 < len(empty) < 0.15 * n
        border = [a for a in anns if a['bbox'][0] == 0 or a['bbox'][1] == 0 or a['bbox'][0] + a['bbox'][2] == 96
                  or a['bbox'][1] + a['bbox'][3] == 96]
        assert border  # some objects are cut by the image border
    ds = CocoDetectionDataset(data_root=str(fomo_root), split='train', num_classes=2)
    assert ds.metainfo['classes'] == ('coin', 'face')  # Roboflow's placeholder category 0 is not a class


def test_fomo_deterministic_and_idempotent(fomo_root, tmp_path):
    again = ensure_fomo_coco(tmp_path / 'fomo')
    ann = 'train/_annotations.coco.json'
    assert open(fomo_root / ann).read() == open(again / ann).read()
    mtime = os.path.getmtime(again / ann)
    assert ensure_fomo_coco(again) == again
    assert os.path.getmtime(again / ann) == mtime
    assert not [p for p in os.listdir(tmp_path) if p.startswith('.')]  # no temporary folder left


def test_default_location_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv('SSCMA_DATA_HOME', str(tmp_path))
    from sscma.datasets import default_data_home
    assert default_data_home() == tmp_path
