import json
import os

import pytest

from sscma.datasets import ImageFolderDataset
from sscma.utils import DatasetError

from ..conftest import write_class_folders


def test_labels_json_fixes_ids(folder_root):
    ds = ImageFolderDataset(data_root=folder_root, split='training')
    assert ds.metainfo['classes'] == ('dog', 'cat', 'fox')
    info = ds.get_data_info(0)
    folder = os.path.basename(os.path.dirname(info['img_path']))
    assert ds.metainfo['classes'][info['gt_label']] == folder
    assert len(ds) == 18


def test_split_aliases(tmp_path):
    root = write_class_folders(tmp_path, ['a', 'b'], per_class=2, splits=('train', 'val'))
    assert len(ImageFolderDataset(data_root=root, split='training')) == 4
    assert len(ImageFolderDataset(data_root=root, split='validation')) == 4


def test_ids_from_union_of_splits_when_no_labels_json(tmp_path):
    root = write_class_folders(tmp_path, ['a', 'b', 'c'], per_class=1, splits=('training', ))
    write_class_folders(tmp_path, ['a', 'c'], per_class=1, splits=('validation', ))
    val = ImageFolderDataset(data_root=root, split='validation')
    assert val.metainfo['classes'] == ('a', 'b', 'c')
    assert sorted({d['gt_label'] for d in val.load_data_list()}) == [0, 2]


def test_plain_class_folder_root(tmp_path):
    root = write_class_folders(tmp_path, ['x', 'y'], per_class=2, splits=('', ))
    assert len(ImageFolderDataset(data_root=root, split='')) == 4


def test_labels_json_missing_class(tmp_path):
    root = write_class_folders(tmp_path, ['a', 'b'], per_class=1, labels={'a': 0})
    with pytest.raises(DatasetError, match=r"\['b'\].*labels.json"):
        ImageFolderDataset(data_root=root, split='training')


def test_num_classes_mismatch(folder_root):
    with pytest.raises(DatasetError, match='num_classes=5 but .*labels.json defines 3 classes'):
        ImageFolderDataset(data_root=folder_root, split='training', num_classes=5)


@pytest.mark.parametrize('labels, match', [({'a': 0, 'b': 2}, 'ids must be 0..1'), ({'a': '0'}, 'integers'),
                                           ([], 'non-empty object')])
def test_bad_labels_json(tmp_path, labels, match):
    root = write_class_folders(tmp_path, ['a', 'b'], per_class=1)
    with open(os.path.join(root, 'labels.json'), 'w') as f:
        json.dump(labels, f)
    with pytest.raises(DatasetError, match=match):
        ImageFolderDataset(data_root=root, split='training')


def test_missing_root_and_split(tmp_path):
    with pytest.raises(DatasetError, match='does not exist'):
        ImageFolderDataset(data_root=str(tmp_path / 'nowhere'))
    with pytest.raises(DatasetError, match='data_root is empty'):
        ImageFolderDataset(data_root='')
    root = write_class_folders(tmp_path, ['a'], per_class=1, splits=('training', ))
    with pytest.raises(DatasetError, match='no "test" folder'):
        ImageFolderDataset(data_root=root, split='test')


def test_no_images(tmp_path):
    os.makedirs(tmp_path / 'training' / 'a')
    with pytest.raises(DatasetError, match='no images'):
        ImageFolderDataset(data_root=str(tmp_path), split='training')
