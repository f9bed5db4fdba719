"""Segmentation exports through the format table: recognised as what they are (never as class folders named
"img_dir"), re-split by ``tools/dataset_split.py`` with every image kept beside its mask."""
import os

import numpy as np
import pytest

from sscma.datasets import ImageFolderDataset
from sscma.datasets.formats import recognise
from sscma.datasets.segmentation_builtin import write_seg_set
from sscma.datasets.segmentation_dataset import SegmentationDataset, read_mask
from sscma.datasets.split import split_dataset
from sscma.utils.errors import DatasetError

LAYOUT_KIND = {'masks': 'masks', 'yolo': 'yolo', 'coco': 'coco', 'cvat': 'voc_seg'}


@pytest.fixture(scope='module')
def seg_exports(tmp_path_factory):
    root = tmp_path_factory.mktemp('seg_exports')
    return write_seg_set(root, tuple(LAYOUT_KIND), splits=(('train', 8, 41), ('val', 3, 42), ('test', 3, 43)),
                         ignore_band=True)


def _masks(root, splits):
    """``{file name: mask}`` of every image of ``splits``."""
    out = {}
    for split in splits:
        ds = SegmentationDataset(data_root=str(root), split=split, pipeline=[])
        for i in range(len(ds)):
            info = ds.get_data_info(i)
            out[os.path.basename(info['img_path'])] = read_mask(info['seg_source'])
    return out


@pytest.mark.parametrize('layout', list(LAYOUT_KIND))
def test_split_keeps_every_image_with_its_mask(seg_exports, tmp_path, layout):
    src = seg_exports[layout]
    assert recognise(str(src))[0].name == LAYOUT_KIND[layout]
    before = _masks(src, ('train', 'val', 'test'))
    out = tmp_path / 'split'
    report = split_dataset(str(src), str(out), seed=3)
    assert report.kind == LAYOUT_KIND[layout] and report.num_files == len(before) == 14
    after = _masks(out, ('train', 'val', 'test'))
    assert sorted(after) == sorted(before)
    for name, mask in before.items():
        assert np.array_equal(after[name], mask), name
    if layout == 'masks':  # index PNGs: the ignore band (255) travels too
        assert any((m == 255).any() for m in after.values())


def test_mask_folders_are_never_class_folders(seg_exports, tmp_path):
    src = seg_exports['masks']
    for split in ('', 'training'):
        with pytest.raises(DatasetError, match=r'holds the folders .*img_dir/.*: a segmentation dataset layout'):
            ImageFolderDataset(data_root=str(src), split=split)
    with pytest.raises(DatasetError, match=r'holds the folders .*SegmentationClass/.*: a segmentation dataset'):
        ImageFolderDataset(data_root=str(seg_exports['cvat']), split='')


def test_a_missing_mask_is_named_and_nothing_is_written(seg_exports, tmp_path):
    import shutil
    src = tmp_path / 'export'
    shutil.copytree(seg_exports['masks'], src)
    missing = sorted((src / 'ann_dir' / 'val').glob('*.png'))[0]
    missing.unlink()
    with pytest.raises(DatasetError, match=rf'has no mask: expected .*{missing.name}'):
        split_dataset(str(src), str(tmp_path / 'out'))
    assert sorted(os.listdir(tmp_path)) == ['export']


def test_no_segmentation_layout_is_named(tmp_path):
    (tmp_path / 'photos').mkdir()
    with pytest.raises(DatasetError, match=r'no segmentation layout recognised under data_root=.*: expected COCO .*'
                                           r'YOLO-seg .*mask PNGs .*Pascal VOC / CVAT masks .*found folders photos/'):
        SegmentationDataset(data_root=str(tmp_path), split='train', pipeline=[])
