"""Trees shaped exactly as CVAT ("COCO 1.0", "YOLO 1.1", "Pascal VOC 1.1") and labelImg (YOLO, Pascal VOC) export
a task: recognised by the format table, read whole, re-split by ``tools/dataset_split.py`` and read back with the
same images, boxes and class names; folders that only look like a dataset are refused, never taken for class
folders."""
import json
import os
import os.path as osp
import runpy
import shutil
import sys

import numpy as np
import pytest

from sscma.datasets import DetectionDataset, ImageFolderDataset, detect_format, recognise
from sscma.datasets.split import split_dataset
from sscma.utils import DatasetError

from ..detection_data import CLASSES, EXPORT_CLASSES, write_tool_export

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
N = 24  # images per export: 18 with objects, 6 background
# tool -> (format table entry, the line the splitter prints about what it read)
EXPECTED = {
    'cvat_coco': ('coco', 'CVAT COCO 1.0 export: annotations/instances_default.json + images/'),
    'cvat_coco_nested': ('coco', 'CVAT COCO 1.0 export: annotations/instances_default.json + images/default/'),
    'cvat_yolo': ('yolo', 'CVAT YOLO 1.1 export: obj.data + obj.names + train.txt + obj_train_data/'),
    'cvat_voc': ('voc', 'CVAT Pascal VOC 1.1 export: Annotations/ + JPEGImages/ + ImageSets/Main/default.txt + '
                        'labelmap.txt'),
    'labelimg_yolo': ('yolo', f'labelImg YOLO folder: {N} images, 18 .txt labels and classes.txt side by side'),
    'labelimg_voc': ('voc', f'labelImg VOC folder: {N} .xml beside {N} images'),
}
# class names in the order the export fixes (labelImg VOC has no class list: the sorted object names)
CLASS_ORDER = {tool: tuple(sorted(CLASSES)) if tool == 'labelimg_voc' else EXPORT_CLASSES for tool in EXPECTED}


def _objects(datasets):
    """``{(image file name, class name, box rounded to 0.01 px)}`` and the image file names of ``datasets``."""
    objects, images = set(), []
    for ds in datasets:
        classes = ds.metainfo['classes']
        for d in ds:
            images.append(osp.basename(d['img_path']))
            objects |= {(images[-1], classes[i['bbox_label']], tuple(round(v, 2) for v in i['bbox']))
                        for i in d['instances']}
    return objects, images


def _truth_matches(objects, scenes):
    """Every object of ``scenes`` is read once with its class, its box within a pixel (VOC readers take the
    corners as 1-based, as mmdet does, and CVAT writes them 0-based), and nothing else is read."""
    got = {}
    for name, cls, box in objects:
        got.setdefault(name, []).append((cls, box))
    want = {sc['name'] + '.jpg': [(CLASSES[label], box) for label, box in sc['objects']]
            for sc in scenes if sc['objects']}
    assert got.keys() == want.keys()
    for name, objs in want.items():
        assert sorted(c for c, _ in got[name]) == sorted(c for c, _ in objs), name
        for cls, box in objs:
            assert any(c == cls and np.allclose(b, box, atol=1.01) for c, b in got[name]), (name, cls, box, got[name])


@pytest.mark.parametrize('tool', list(EXPECTED))
def test_export_is_recognised_read_and_resplit(tool, tmp_path):
    src, out = str(tmp_path / 'export'), str(tmp_path / 'out')
    scenes = write_tool_export(src, tool, N)
    fmt, line = EXPECTED[tool]
    entry, found = recognise(src)
    assert (entry.name, found) == (fmt, line) and detect_format(src) == fmt

    whole = DetectionDataset(data_root=src, split='', test_mode=True)
    assert whole.format == fmt and whole.metainfo['classes'] == CLASS_ORDER[tool]
    before, images = _objects([whole])
    assert sorted(images) == sorted(sc['name'] + '.jpg' for sc in scenes)  # backgrounds kept
    _truth_matches(before, scenes)
    # one set exported whole: a named split that it does not have says how to split it
    with pytest.raises(DatasetError, match=r'split it first: python tools/dataset_split\.py'):
        DetectionDataset(data_root=src, split='valid' if tool == 'cvat_yolo' else 'train')

    report = split_dataset(src, out, (0.5, 0.25, 0.25), seed=0)
    assert report.kind == fmt and report.source == line and report.num_files == N
    assert report.classes == list(CLASS_ORDER[tool])
    assert report.read_line() == f'read {line} ({N} images, 3 classes {list(CLASS_ORDER[tool])})'
    assert not osp.exists(osp.join(out, 'labels.json'))
    assert sorted(os.listdir(out)) == {'coco': ['test', 'train', 'valid'],
                                       'yolo': ['data.yaml', 'images', 'labels'],
                                       'voc': ['Annotations', 'ImageSets', 'JPEGImages', 'labels.txt']}[fmt]
    parts = [DetectionDataset(data_root=out, split=s, test_mode=True) for s in report.splits]
    assert all(ds.format == fmt and ds.metainfo['classes'] == CLASS_ORDER[tool] for ds in parts)
    after, images_after = _objects(parts)
    assert after == before
    assert sorted(images_after) == sorted(images)  # every image once, in one split
    assert report.splits == ({'coco': ['train', 'valid', 'test']}.get(fmt) or ['train', 'val', 'test'])
    assert all(len(ds) >= 5 for ds in parts)  # stratified 12 / 6 / 6, give or take one per stratum


def test_images_and_annotations_folders_are_never_class_folders(tmp_path):
    """A folder with ``images/`` + ``annotations/`` that is not a COCO export: an error naming what was found,
    no ``labels.json`` and no one-class classification set named "images"."""
    src = tmp_path / 'export'
    write_tool_export(src, 'cvat_coco', 6)
    ann = src / 'annotations' / 'instances_default.json'
    captions = ann.with_name('captions_default.json')
    ann.rename(captions)  # COCO captions: not box annotations
    out = tmp_path / 'out'
    with pytest.raises(DatasetError, match=r'no dataset layout recognised under data_root=.*export: expected COCO '
                                           r'json \(.*CVAT "COCO 1\.0": annotations/instances_default\.json \+ '
                                           r'images/.*class folders \(.*; found folders annotations/ \(1 \.json\), '
                                           r'images/ \(6 \.jpg\); files: none\..*python tools/dataset_split\.py '
                                           r'EXPORT OUT'):
        split_dataset(str(src), str(out))
    with pytest.raises(DatasetError, match=r'no detection annotations found under data_root=.*; found folders '
                                           r'annotations/ \(1 \.json\), images/ \(6 \.jpg\)'):
        DetectionDataset(data_root=str(src), split='')
    for split in ('', 'training'):
        with pytest.raises(DatasetError, match=r'holds the folders annotations/, images/: a detection dataset '
                                               r'layout, not class folders'):
            ImageFolderDataset(data_root=str(src), split=split)

    captions.rename(ann)
    ann.write_text(json.dumps(dict(images=[], categories=[])))  # recognised as COCO, broken: named
    with pytest.raises(DatasetError, match=r'instances_default\.json: missing "annotations" list'):
        split_dataset(str(src), str(out))
    assert sorted(os.listdir(tmp_path)) == ['export']  # nothing written, no temporary folder left


def test_annotation_files_beside_images_are_not_a_class_folder(tmp_path):
    """labelImg folders placed as if they were classes (``SRC/<name>/a.jpg`` + ``a.txt``) are refused."""
    src = tmp_path / 'sets'
    write_tool_export(src / 'first', 'labelimg_yolo', 4)
    write_tool_export(src / 'second', 'labelimg_voc', 4)
    with pytest.raises(DatasetError, match=r'first: 3 images have a \.txt/\.xml annotation of the same name beside'):
        split_dataset(str(src), str(tmp_path / 'out'))
    with pytest.raises(DatasetError, match=r'annotation of the same name beside them'):
        list(ImageFolderDataset(data_root=str(src), split=''))
    assert not osp.exists(tmp_path / 'out')
    roboflow_yolo = tmp_path / 'roboflow'  # train/images + train/labels is YOLO, not classes "images" and "labels"
    from ..detection_data import write_detection_scenes
    write_detection_scenes(roboflow_yolo, 'yolo_roboflow', dict(train=4, valid=2))
    with pytest.raises(DatasetError, match=r'train holds the folders images/, labels/'):
        ImageFolderDataset(data_root=str(roboflow_yolo), split='train')


def test_split_tool_prints_what_it_read(tmp_path, monkeypatch, capsys):
    src, out = str(tmp_path / 'export'), str(tmp_path / 'out')
    write_tool_export(src, 'cvat_coco', 12)
    monkeypatch.setattr(sys, 'argv', ['dataset_split.py', src, out])
    runpy.run_path(osp.join(REPO, 'tools', 'dataset_split.py'), run_name='__main__')
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ("read CVAT COCO 1.0 export: annotations/instances_default.json + images/ (12 images, 3 "
                        "classes ['ring', 'block', 'disc'])")
    assert lines[1] == (f'12 images from {src} -> {out} (Roboflow COCO export: '
                        '{train,valid,test}/_annotations.coco.json)')


@pytest.mark.parametrize('tool', ['cvat_coco', 'cvat_yolo', 'cvat_voc', 'labelimg_yolo', 'labelimg_voc'])
def test_fomo_trains_on_a_split_export(tool, tmp_path):
    """The documented two commands, as a user runs them: dataset_split.py on the export as the tool wrote it,
    then a FOMO training on OUT."""
    from ..test_tools.test_train_test import FAST, FOMO, run_tool
    src, out, work = (str(tmp_path / d) for d in ('export', 'out', 'work'))
    write_tool_export(src, tool, N)
    run_tool('dataset_split.py', src, out)
    run_tool('train.py', FOMO, '--work-dir', work, '--cfg-options', f'data_root={out}', 'num_classes=3', 'epochs=1',
             'imgsz=(64,64)', *FAST)
    results = json.load(open(osp.join(work, 'results.json')))
    assert {'fomo/f1', 'fomo/ring_f1', 'fomo/block_f1', 'fomo/disc_f1'} <= set(results['val'])
    shutil.rmtree(work)
