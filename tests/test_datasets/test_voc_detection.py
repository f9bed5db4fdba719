"""Pascal VOC xml (VOC2007 with ImageSets, labelImg / Roboflow split folders, CVAT) read by DetectionDataset."""
import os
import os.path as osp
import shutil

import numpy as np
import pytest

from sscma.datasets import DetectionDataset
from sscma.utils import DatasetError

from ..detection_data import CLASSES, make_scenes, voc_xml, write_detection_scenes


def _instances(ds):
    return {osp.basename(d['img_path']): [(i['bbox_label'], i['bbox'], i['ignore_flag']) for i in d['instances']]
            for d in ds}


def test_voc2007_follows_mmdet_xml_conventions(tmp_path):
    """Same instances as mmdet's own VOCDataset on the same VOCdevkit (1-based corners, difficult)."""
    from mmdet.datasets import VOCDataset
    scenes = write_detection_scenes(tmp_path, 'voc')
    base = tmp_path / 'VOCdevkit' / 'VOC2007'
    sc = scenes['train'][0]
    (base / 'Annotations' / f'{sc["name"]}.xml').write_text(voc_xml(sc, 'VOC2007', difficult=(0, )))
    ours = DetectionDataset(data_root=str(tmp_path), split='train')
    assert ours.format == 'voc' and ours.metainfo['classes'] == CLASSES
    theirs = VOCDataset(data_root=str(tmp_path / 'VOCdevkit'), ann_file='VOC2007/ImageSets/Main/train.txt',
                        data_prefix=dict(sub_data_root='VOC2007/'), metainfo=dict(classes=CLASSES),
                        filter_cfg=dict(filter_empty_gt=False), pipeline=[])
    assert len(theirs) == len(ours) == 8
    for a, b in zip(ours, theirs):
        assert osp.realpath(a['img_path']) == osp.realpath(b['img_path'])
        assert (a['width'], a['height']) == (b['width'], b['height'])
        assert [(i['bbox_label'], i['bbox'], i['ignore_flag']) for i in a['instances']] == [
            (i['bbox_label'], list(map(float, i['bbox'])), i['ignore_flag']) for i in b['instances']]
    assert ours[0]['instances'][0]['ignore_flag'] == 1  # difficult
    # the pixel boxes of the scene, exactly (the writer adds 1, the reader subtracts it)
    want = [(label, list(map(float, box))) for label, box in sc['objects']]
    assert [(i['bbox_label'], i['bbox']) for i in ours[0]['instances']] == want
    assert len(DetectionDataset(data_root=str(tmp_path), split='valid', test_mode=True)) == 4


def test_labelimg_split_folders(tmp_path):
    scenes = write_detection_scenes(tmp_path, 'labelimg')
    for split in ('train', 'val', 'test'):
        ds = DetectionDataset(data_root=str(tmp_path), split=split, num_classes=3, test_mode=split != 'train')
        key = 'valid' if split == 'val' else split
        assert sorted(_instances(ds)) == [sc['name'] + '.jpg' for sc in scenes[key]]
    # grayscale JPEGs and 4 image sizes are among them
    sizes = {(d['width'], d['height']) for d in DetectionDataset(data_root=str(tmp_path), split='train')}
    assert sizes == {(128, 128), (160, 120), (320, 240), (64, 48)}


def test_labels_file_fixes_classes(tmp_path):
    write_detection_scenes(tmp_path, 'labelimg', dict(train=4, valid=2))
    (tmp_path / 'labels.txt').write_text('ring\ndisc\nblock\nstar\n')
    ds = DetectionDataset(data_root=str(tmp_path), split='train')
    assert ds.metainfo['classes'] == ('ring', 'disc', 'block', 'star')
    (tmp_path / 'labels.txt').write_text('ring\ndisc\n')
    with pytest.raises(DatasetError, match=r"train_000\.xml: class 'block' is not in .*labels\.txt \(it lists "
                       r"\['ring', 'disc'\]\)"):
        DetectionDataset(data_root=str(tmp_path), split='train')


def test_size_missing_reads_the_image(tmp_path):
    write_detection_scenes(tmp_path, 'labelimg', dict(train=2, valid=1))
    xml = tmp_path / 'train' / 'train_001.xml'
    text = xml.read_text()
    start, end = text.index('\t<size>'), text.index('</size>') + len('</size>')
    xml.write_text(text[:start] + text[end:])
    (tmp_path / 'train' / 'train_000.xml').write_text(
        (tmp_path / 'train' / 'train_000.xml').read_text().replace('<width>128</width>', '<width>0</width>'))
    ds = DetectionDataset(data_root=str(tmp_path), split='train')
    assert [(d['width'], d['height']) for d in ds] == [(128, 128), (160, 120)]


def test_single_set_needs_split(tmp_path):
    """A CVAT "Pascal VOC" export without subsets: Annotations/, JPEGImages/, ImageSets/Main/default.txt."""
    scenes = make_scenes(dict(default=5))
    for d in ('Annotations', 'JPEGImages', 'ImageSets/Main'):
        os.makedirs(tmp_path / d)
    import cv2
    from ..detection_data import draw
    for sc in scenes['default']:
        cv2.imwrite(str(tmp_path / 'JPEGImages' / f'{sc["name"]}.jpg'), draw(sc))
        (tmp_path / 'Annotations' / f'{sc["name"]}.xml').write_text(voc_xml(sc, ''))
    (tmp_path / 'ImageSets' / 'Main' / 'default.txt').write_text('\n'.join(s['name'] for s in scenes['default']))
    with pytest.raises(DatasetError, match=r'holds one set of VOC annotations without train/valid/test splits; '
                       r'split it first: python tools/dataset_split.py'):
        DetectionDataset(data_root=str(tmp_path), split='train')
    assert len(DetectionDataset(data_root=str(tmp_path), split='')) == 5


def _mistake(root, case):
    xml = root / 'train' / 'train_000.xml'
    text = xml.read_text()
    if case == 'truncated':
        xml.write_text(text[:len(text) // 2])
    elif case == 'doctype':
        xml.write_text('<?xml version="1.0"?>\n<!DOCTYPE lol [<!ENTITY lol "lol">]>\n' + text)
    elif case == 'flipped':
        xml.write_text(text.replace('<xmax>32</xmax>', '<xmax>1</xmax>'))
    elif case == 'not_number':
        xml.write_text(text.replace('<xmax>32</xmax>', '<xmax>3a</xmax>'))
    elif case == 'no_name':
        xml.write_text(text.replace('<name>block</name>', '<name></name>'))
    elif case == 'difficult':
        xml.write_text(text.replace('<difficult>0</difficult>', '<difficult>yes</difficult>'))
    elif case == 'bad_size':
        xml.write_text(text.replace('<width>128</width>', '<width>wide</width>'))
    elif case == 'missing_image':
        os.remove(root / 'train' / 'train_000.jpg')
    elif case == 'not_voc':
        xml.write_text('<svg></svg>')
    elif case == 'outside':
        xml.write_text(text.replace('<xmin>1</xmin>', '<xmin>500</xmin>').replace('<xmax>32</xmax>',
                                                                                 '<xmax>600</xmax>'))


@pytest.mark.parametrize('case, pattern', [
    ('truncated', r'train_000\.xml: malformed XML \(.*line \d+, column \d+\)'),
    ('doctype', r'train_000\.xml: DOCTYPE/ENTITY declarations are not accepted'),
    ('flipped', r'train_000\.xml: object 1 \(block\): box needs xmax > xmin and ymax > ymin, got xmin=1 ymin=3 '
     r'xmax=1'),
    ('not_number', r"object 1 \(block\): <bndbox> needs numbers xmin, ymin, xmax, ymax; got .*'xmax': '3a'"),
    ('no_name', r'train_000\.xml: object 1: no <name>'),
    ('difficult', r"object 1 \(block\): <difficult> must be 0 or 1, got 'yes'"),
    ('bad_size', r"train_000\.xml: <size> needs integer <width> and <height>, got 'wide' x '128'"),
    ('missing_image', r'train_000\.xml: no image for it \(train_000\.jpg/\.png/\.\.\. or <filename> '
     r"'train_000\.jpg'\)"),
    ('not_voc', r'train_000\.xml: expected a Pascal VOC <annotation> root element, got <svg>'),
    ('outside', r'object 1 \(block\): box xmin=500 ymin=3 xmax=600 ymax=27 lies outside the 128x128 image'),
])
def test_xml_mistakes(case, pattern, tmp_path):
    write_detection_scenes(tmp_path, 'labelimg', dict(train=2, valid=1))
    _mistake(tmp_path, case)
    with pytest.raises(DatasetError, match=pattern) as e:
        DetectionDataset(data_root=str(tmp_path), split='train')
    assert '\n' not in str(e.value)


def test_imageset_entries_stay_inside(tmp_path):
    write_detection_scenes(tmp_path / 'data', 'voc', dict(train=2, valid=1))
    main = tmp_path / 'data' / 'VOCdevkit' / 'VOC2007' / 'ImageSets' / 'Main'
    (main / 'train.txt').write_text('train_000\n../../../../../outside\n')
    shutil.copy(tmp_path / 'data' / 'VOCdevkit' / 'VOC2007' / 'Annotations' / 'train_000.xml',
                tmp_path / 'outside.xml')
    with pytest.raises(DatasetError, match=r'train\.txt:2: .*outside\.xml points outside the dataset root'):
        DetectionDataset(data_root=str(tmp_path / 'data'), split='train')
    (main / 'train.txt').write_text('train_000\ntrain_404\n')
    with pytest.raises(DatasetError, match=r'train\.txt:2: train_404 has no annotation file'):
        DetectionDataset(data_root=str(tmp_path / 'data'), split='train')


def test_cvat_float_corners(tmp_path):
    """CVAT writes float corners; mmdet truncates them (int(float(x))) before subtracting 1."""
    write_detection_scenes(tmp_path, 'labelimg', dict(train=1, valid=1))
    xml = tmp_path / 'train' / 'train_000.xml'
    xml.write_text(xml.read_text().replace('<xmin>1</xmin>', '<xmin>1.7</xmin>').replace(
        '<xmax>32</xmax>', '<xmax>32.4</xmax>'))
    box = DetectionDataset(data_root=str(tmp_path), split='train')[0]['instances'][0]['bbox']
    np.testing.assert_allclose(box[::2], [0, 31])
