"""SegmentationDataset: the same objects in mask PNGs, YOLO-seg and COCO (polygons and RLE) give the same masks,
in any class order; bad files are named."""
import json
import os

import cv2
import numpy as np
import pytest

from sscma.datasets import SegmentationDataset, read_mask
from sscma.datasets.segmentation_builtin import write_seg_set
from sscma.utils.errors import DatasetError

MODEL = ['background', 'coin', 'face']


@pytest.fixture(scope='module')
def layouts(tmp_path_factory):
    root = tmp_path_factory.mktemp('seg_layouts')
    return write_seg_set(root, ('masks', 'yolo', 'coco', 'cvat'), splits=(('val', 10, 5), ), ignore_band=False)


def masks(root, **kw):
    ds = SegmentationDataset(data_root=str(root), split='val', **kw)
    return [read_mask(ds.get_data_info(i)['seg_source'], ds.get_data_info(i)['seg_lut']) for i in range(len(ds))]


def test_three_layouts_same_masks_at_the_image_size(layouts):
    ref = masks(layouts['masks'])
    assert {m.shape for m in ref} - {(96, 96)}, 'the set has other sizes than square'
    assert any(m.shape[0] != m.shape[1] for m in ref)
    for layout in ('yolo', 'coco', 'cvat'):
        got = masks(layouts[layout])
        assert all(np.array_equal(a, b) for a, b in zip(ref, got)), layout
    assert set(np.unique(np.concatenate([m.ravel() for m in ref]))) == {0, 1, 2}


def test_other_class_order_is_mapped_by_name(layouts, tmp_path):
    import shutil
    root = tmp_path / 'coco'
    shutil.copytree(layouts['coco'], root)
    ann = root / 'val' / '_annotations.coco.json'
    doc = json.loads(ann.read_text())
    swap = {1: 2, 2: 1}
    doc['categories'] = [dict(id=1, name='face'), dict(id=2, name='coin')]
    for a in doc['annotations']:
        a['category_id'] = swap[a['category_id']]
    ann.write_text(json.dumps(doc))
    ref = masks(layouts['masks'])
    assert all(np.array_equal(a, b) for a, b in zip(ref, masks(root, model_classes=MODEL)))
    raw = masks(root)  # the file's own order: coin and face swapped
    assert any(not np.array_equal(a, b) for a, b in zip(ref, raw))
    with pytest.raises(DatasetError, match='class_match=shared'):
        masks(root, model_classes=['background', 'cat', 'dog'])


def test_coco_rle_reads_like_polygons(layouts, tmp_path):
    from pycocotools import mask as mask_utils
    import shutil
    root = tmp_path / 'coco_rle'
    shutil.copytree(layouts['coco'], root)
    ann = root / 'val' / '_annotations.coco.json'
    doc = json.loads(ann.read_text())
    sizes = {i['id']: (i['height'], i['width']) for i in doc['images']}
    for a in doc['annotations']:
        h, w = sizes[a['image_id']]
        from sscma.datasets import rasterise
        m = rasterise([(1, a['segmentation'][0])], (h, w))
        rle = mask_utils.encode(np.asfortranarray(m))
        a['segmentation'] = dict(size=rle['size'], counts=rle['counts'].decode())
    ann.write_text(json.dumps(doc))
    ref = masks(layouts['masks'])
    assert all(np.array_equal(a, b) for a, b in zip(ref, masks(root)))


def test_bad_masks_are_named(layouts, tmp_path):
    import shutil
    root = tmp_path / 'masks'
    shutil.copytree(layouts['masks'], root)
    ann_dir = root / 'ann_dir' / 'val'
    first = sorted(os.listdir(ann_dir))[0]
    h, w = cv2.imread(str(ann_dir / first), cv2.IMREAD_UNCHANGED).shape[:2]
    cv2.imwrite(str(ann_dir / first), np.zeros((h + 1, w), np.uint8))
    with pytest.raises(DatasetError, match=f'{first}: mask is {w}x{h + 1} but its image is {w}x{h}'):
        masks(root)
    cv2.imwrite(str(ann_dir / first), np.full((h, w), 7, np.uint8))
    with pytest.raises(DatasetError, match=r'mask values \[7\] are not class indices \(0..2 from .*classes.txt'):
        masks(root)
    cv2.imwrite(str(ann_dir / first), np.zeros((h, w, 3), np.uint8))
    with pytest.raises(DatasetError, match='a RGB image; expected an index mask'):
        masks(root)
    os.remove(ann_dir / first)
    with pytest.raises(DatasetError, match=f'has no mask: expected .*{first}'):
        masks(root)
    os.remove(root / 'classes.txt')
    with pytest.raises(DatasetError, match='mask PNGs need .*classes.txt'):
        masks(root)


def test_bad_yolo_line_is_named(layouts, tmp_path):
    import shutil
    root = tmp_path / 'yolo'
    shutil.copytree(layouts['yolo'], root)
    label = sorted((root / 'labels' / 'val').iterdir())[0]
    label.write_text('5 0.1 0.1 0.2 0.2 0.3 0.1\n')
    with pytest.raises(DatasetError, match=f'{label.name}:1: expected a class in 0..1'):
        masks(root)


def test_cvat_unknown_colour_and_single_set(layouts, tmp_path):
    import shutil
    root = tmp_path / 'cvat'
    shutil.copytree(layouts['cvat'], root)
    os.rename(root / 'ImageSets' / 'Segmentation' / 'val.txt', root / 'ImageSets' / 'Segmentation' / 'default.txt')
    with pytest.raises(DatasetError, match="no ImageSets/Segmentation/val.txt .* read whole with split=''"):
        masks(root)
    ref = masks(layouts['masks'])
    whole = SegmentationDataset(data_root=str(root), split='')
    got = [read_mask(whole.get_data_info(i)['seg_source'], whole.get_data_info(i)['seg_lut'])
           for i in range(len(whole))]
    assert all(np.array_equal(a, b) for a, b in zip(ref, got))
    png = sorted((root / 'SegmentationClass').iterdir())[0]
    img = cv2.imread(str(png))
    img[0, 0] = (1, 2, 3)  # BGR
    cv2.imwrite(str(png), img)
    whole = SegmentationDataset(data_root=str(root), split='')
    with pytest.raises(DatasetError, match=r'colour \(3, 2, 1\) is not in .*labelmap.txt'):
        read_mask(whole.get_data_info(0)['seg_source'])
