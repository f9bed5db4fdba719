"""Class names matched between a model and a dataset (sscma.utils.class_names) and the datasets that use it."""
import logging
import os
import os.path as osp

import pytest
import yaml

from sscma.utils import ConfigError, DatasetError
from sscma.utils.class_names import bind_model_classes, match_classes
from tests.detection_data import CLASSES, write_detection_scenes

LOG = logging.getLogger('test_class_names')


def test_same_order_is_identity_and_says_nothing(caplog):
    with caplog.at_level(logging.INFO, logger=LOG.name):
        m = match_classes(['a', 'b'], ['a', 'b'], 'src', logger=LOG)
    assert m.classes == ['a', 'b'] and m.index == {'a': 0, 'b': 1} and not caplog.records


def test_other_order_is_mapped_by_name_in_one_line(caplog):
    with caplog.at_level(logging.INFO, logger=LOG.name):
        m = match_classes(['three', 'five', 'eight'], ['eight', 'five', 'three'], 'voc', logger=LOG)
    assert m.classes == ['three', 'five', 'eight']
    assert m.index == {'eight': 2, 'five': 1, 'three': 0}
    assert [r.getMessage() for r in caplog.records] == [
        'classes mapped by name: model [three, five, eight] vs dataset [eight, five, three] (voc)']


def test_different_names_are_refused_listing_both():
    with pytest.raises(DatasetError) as e:
        match_classes(['cat', 'dog'], ['dog', 'fox'], 'labels.txt', logger=LOG)
    msg = str(e.value)
    assert 'model [cat, dog] vs dataset [dog, fox] (labels.txt)' in msg and 'class_match=shared' in msg
    assert '\n' not in msg
    with pytest.raises(DatasetError, match='share no class'):
        match_classes(['cat'], ['fox'], 'x', mode='shared', logger=LOG)


def test_shared_scores_the_common_classes(caplog):
    with caplog.at_level(logging.INFO, logger=LOG.name):
        m = match_classes(['cat', 'dog', 'cow'], ['fox', 'dog', 'cat'], 'src', mode='shared', logger=LOG)
    assert m.classes == ['cat', 'dog', 'cow'] and m.index == {'dog': 1, 'cat': 0}
    assert m.dropped == ['fox'] and m.unlabelled == ['cow']
    assert m.metainfo() == dict(classes=('cat', 'dog', 'cow'), unlabelled_classes=('cow', ))
    assert 'objects of [fox]' in caplog.text and 'predictions of [cow]' in caplog.text


def test_model_without_names_keeps_the_dataset_order():
    m = match_classes(None, ['b', 'a'], 'src', logger=LOG)
    assert m.classes == ['b', 'a'] and m.index == {'b': 0, 'a': 1}


def test_transfer_keeps_dataset_classes_when_names_differ():
    m = match_classes(['cat', 'dog'], ['car', 'bus', 'van'], 'src', mode='transfer', logger=LOG)
    assert m.classes == ['car', 'bus', 'van']
    assert match_classes(['b', 'a'], ['a', 'b'], 'src', mode='transfer', logger=LOG).classes == ['b', 'a']


def test_bind_sets_datasets_and_checks_the_config_value():
    from mmengine.config import Config
    cfg = Config(dict(class_match='shared', test_dataloader=dict(dataset=dict(
        type='RepeatDataset', times=2, dataset=dict(type='DetectionDataset', data_root='x'))),
        test_evaluator=dict(type='mmdet.CocoMetric', ann_file='x/test.json')))
    bind_model_classes(cfg, ['a', 'b'], 'm.pth', logger=LOG)
    leaf = cfg.test_dataloader.dataset.dataset
    assert leaf.model_classes == ['a', 'b'] and leaf.class_match == 'shared'
    assert cfg.test_evaluator.ann_file is None  # its ground truth comes from the renumbered dataset
    cfg.class_match = 'any'
    with pytest.raises(ConfigError, match="class_match='any'"):
        bind_model_classes(cfg, ['a'], 'm.pth', logger=LOG)


def test_bind_without_names_warns_once(caplog):
    from mmengine.config import Config
    cfg = Config(dict(test_dataloader=dict(dataset=dict(type='DetectionDataset', data_root='x'))))
    with caplog.at_level(logging.WARNING, logger=LOG.name):
        bind_model_classes(cfg, None, 'old.pth', logger=LOG)
    assert 'model_classes' not in cfg.test_dataloader.dataset
    assert len(caplog.records) == 1 and 'compared as they are' in caplog.text


def reorder_yolo(root, names):
    """Renumber a YOLO export of :data:`CLASSES` so that ``data.yaml`` lists ``names`` (another order)."""
    new_id = {CLASSES.index(n): i for i, n in enumerate(names)}
    path = osp.join(root, 'data.yaml')
    data = yaml.safe_load(open(path))
    data['names'] = list(names)
    yaml.safe_dump(data, open(path, 'w'), sort_keys=False)
    for d, _, files in os.walk(osp.join(root, 'labels')):
        for f in files:
            lines = open(osp.join(d, f)).read().split('\n')
            out = [' '.join([str(new_id[int(ln.split()[0])]), *ln.split()[1:]]) for ln in lines if ln.strip()]
            open(osp.join(d, f), 'w').write(''.join(f'{ln}\n' for ln in out))


def boxes_by_name(ds):
    names = ds.metainfo['classes']
    return sorted((osp.basename(d['img_path']), names[i['bbox_label']], tuple(round(v) for v in i['bbox']))
                  for d in ds.load_data_list() for i in d['instances'])


def test_detection_layouts_agree_by_name(tmp_path):
    """The same images as YOLO (names [ring, block, disc]) and as VOC (sorted names) give the same
    (image, class name, box) once the VOC set is read in the YOLO model's order; the ids differ without it."""
    from sscma.datasets import DetectionDataset
    order = ['ring', 'block', 'disc']
    write_detection_scenes(tmp_path / 'yolo', 'yolo')
    reorder_yolo(str(tmp_path / 'yolo'), order)
    write_detection_scenes(tmp_path / 'voc', 'voc')
    yolo = DetectionDataset(str(tmp_path / 'yolo'), 'valid', test_mode=True)
    voc_raw = DetectionDataset(str(tmp_path / 'voc'), 'valid', test_mode=True)
    voc = DetectionDataset(str(tmp_path / 'voc'), 'valid', model_classes=order, test_mode=True)
    assert yolo.metainfo['classes'] == tuple(order) and voc_raw.metainfo['classes'] == CLASSES
    assert voc.metainfo['classes'] == tuple(order)
    assert boxes_by_name(voc) == boxes_by_name(yolo) == boxes_by_name(voc_raw)
    ids = lambda ds: sorted((osp.basename(d['img_path']), tuple(round(v) for v in i['bbox']), i['bbox_label'])  # noqa
                            for d in ds.load_data_list() for i in d['instances'])
    assert ids(voc) == ids(yolo) != ids(voc_raw)
    with pytest.raises(DatasetError, match=r'model \[ring, block, cone\] vs dataset \[block, disc, ring\]'):
        DetectionDataset(str(tmp_path / 'voc'), 'valid', model_classes=['ring', 'block', 'cone'], test_mode=True)
    shared = DetectionDataset(str(tmp_path / 'voc'), 'valid', model_classes=['ring', 'block', 'cone'],
                              class_match='shared', test_mode=True)
    assert shared.metainfo['unlabelled_classes'] == ('cone', )
    assert {n for _, n, _ in boxes_by_name(shared)} <= {'ring', 'block'}


def test_class_folders_follow_the_model_order(folder_root):
    from sscma.datasets import ImageFolderDataset
    plain = ImageFolderDataset(folder_root, 'validation')
    names = list(reversed(plain.metainfo['classes']))
    ds = ImageFolderDataset(folder_root, 'validation', model_classes=names)
    assert list(ds.metainfo['classes']) == names
    by_file = {d['img_path']: plain.metainfo['classes'][d['gt_label']] for d in plain.load_data_list()}
    assert all(names[d['gt_label']] == by_file[d['img_path']] for d in ds.load_data_list())
    only = ImageFolderDataset(folder_root, 'validation', model_classes=names[:1] + ['zebra'], class_match='shared')
    assert {d['gt_label'] for d in only.load_data_list()} == {0}
