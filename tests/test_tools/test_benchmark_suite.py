"""tools/benchmarks/make_suite.py: six datasets in four layouts other tools write, read back by sscma's readers
with their classes, splits that share no image, boxes inside their non-square images, the same files twice."""
import hashlib
import importlib.util
import json
import os.path as osp

import pytest

from sscma.datasets.detection_dataset import load_detection_split

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load(name):
    spec = importlib.util.spec_from_file_location(name, osp.join(REPO, 'tools', 'benchmarks', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def suite(tmp_path_factory):
    root = tmp_path_factory.mktemp('suite')
    entries = load('make_suite').make_suite(str(root))
    return root, entries


def digest(path):
    return hashlib.md5(open(path, 'rb').read()).hexdigest()


def test_every_dataset_reads_back_in_its_layout(suite):
    root, entries = suite
    assert len(entries) == 6 and {e['layout'] for e in entries} == {'coco2017', 'roboflow', 'yolo', 'voc'}
    assert {len(e['classes']) for e in entries} >= {1, 2, 3, 8}
    assert any(e['empty_images'] for e in entries) and any(h != w for e in entries for h, w in e['image_hw'])
    formats = {'coco2017': 'coco', 'roboflow': 'coco', 'yolo': 'yolo', 'voc': 'voc'}
    for e in entries:
        seen = {}
        for split in ('train', 'valid', 'test'):
            fmt, names, records, _ = load_detection_split(e['data_root'], split)
            assert fmt == formats[e['layout']] and names == e['classes'], e['name']
            assert len(records) == e['images'][split]
            for r in records:
                for obj in r['instances']:
                    x0, y0, x1, y1 = obj['bbox']
                    assert 0 <= x0 < x1 <= r['width'] + 1e-3 and 0 <= y0 < y1 <= r['height'] + 1e-3, r['img_path']
                key = digest(r['img_path'])
                assert seen.setdefault(key, split) == split, f'{r["img_path"]} is also in {seen[key]}'


def test_the_suite_is_deterministic(suite, tmp_path):
    root, entries = suite
    again = load('make_suite').make_suite(str(tmp_path), only=['page_chars'])
    first = next(e for e in entries if e['name'] == 'page_chars')
    assert again[0]['objects'] == first['objects']
    a = json.load(open(osp.join(first['data_root'], 'valid', '_annotations.coco.json')))
    b = json.load(open(osp.join(again[0]['data_root'], 'valid', '_annotations.coco.json')))
    assert a == b


def test_the_crop_suite_reads_back_as_class_folders_with_the_detection_classes(suite, tmp_path):
    import cv2

    from sscma.datasets import ImageFolderDataset
    root, entries = suite
    crops = load('make_crop_suite').make_crop_suite(str(root), str(tmp_path), margin=0.25, per_class=4, side=40)
    assert [e['name'] for e in crops] == [e['name'] for e in entries if len(e['classes']) > 1] + ['lfw_faces']
    for e in crops:
        for split, folder in (('train', 'training'), ('valid', 'validation'), ('test', 'test')):
            data = ImageFolderDataset(data_root=e['data_root'], split=folder, pipeline=[])
            assert list(data.metainfo['classes']) == e['classes'] and len(data) == e['images'][split], e['name']
            assert all(data[i]['gt_label'] < len(e['classes']) for i in range(len(data)))
        if e['name'] != 'lfw_faces':
            assert e['images']['train'] <= 4 * len(e['classes'])
            assert cv2.imread(data[0]['img_path']).shape == (40, 40, 3)
    assert next(e for e in crops if e['name'] == 'lfw_faces')['images'] == dict(train=120, valid=40, test=40)


def test_the_tune_table_says_what_the_board_refused_and_what_the_winner_needs():
    table = load('suite').tune_table([dict(
        dataset='coins_tiles', classes=1, train_images=120, trials=9, trained=4, default_val=0.70, default_test=0.42,
        tuned_val=0.78, tuned_test=0.45, tune_seconds=611.0, tuned_overrides=dict(base_lr=0.0027, imgsz=[96, 96]),
        refused=3, kept_max_arena=151168,
        winner=dict(tflm_arena_bytes=151168, int8_tflm_test=0.44, verdict='nano33_ble_sense: fits'))])
    assert '| coins_tiles | 1 | 120 | 9 (4) | 0.7000 | 0.4200 | 0.7800 | 0.4500 | 611.0 |' in table
    assert 'coins_tiles: 3 trials refused for the board, largest arena trained 151,168 bytes' in table
    assert 'arena 151168 bytes, test 0.44, nano33_ble_sense: fits' in table
    assert 'above the default on 1 of 1' in table


def test_a_search_whose_config_does_not_fit_the_board_still_reports_its_winner(tmp_path):
    board = tmp_path / 'leaderboard.json'
    board.write_text(json.dumps(dict(metric='fomo/f1', trials=[
        dict(trial=0, state='pruned', value=None, work_dir=str(tmp_path / 't0'), overrides={}, arena=None,
             note='not trained: nano33_ble_sense: DOES NOT FIT: arena 293.9 KiB > 192 KiB'),
        dict(trial=6, state='complete', value=0.789, work_dir=str(tmp_path / 't6'), arena=141824,
             overrides=dict(imgsz=[128, 96], widen_factor=0.25))])))
    suite = load('suite')
    row = suite.score_tune(dict(dataset='hubble_sources', classes=2, train_images=300), str(board), str(tmp_path))
    assert row['tuned_val'] == 0.789 and 'default_val' not in row and 'error' not in row
    table = suite.tune_table([row])
    assert '| hubble_sources | 2 | 300 | 2 (1) | - | - | 0.7890 | - |' in table
    assert 'trial 0 (the config) not trained: nano33_ble_sense: DOES NOT FIT' in table
