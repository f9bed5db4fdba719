"""A model's class names travel with it: tools/test.py, the export evaluation and exported files match a
dataset's classes by name, whatever order its export layout numbers them in."""
import json
import os.path as osp
import shutil

import pytest
import torch

from tests.detection_data import write_detection_scenes
from tests.test_deploy.test_export import FOMO, fomo_opts, run_inprocess, tool_error
from tests.test_tools.test_train_test import run_tool
from tests.test_utils.test_class_names import reorder_yolo

ORDER = ['ring', 'block', 'disc']  # the YOLO export's order; VOC without labels.txt sorts: block, disc, ring
COUNTS = dict(train=16, valid=6, test=8)


def opts(root):
    # a low threshold: the briefly trained model predicts many centroids, so a wrong numbering changes TP/FP/FN
    return [*fomo_opts(root), 'num_classes=3', 'model.head.score_thr=0.05']


@pytest.fixture(scope='module')
def layouts(tmp_path_factory):
    """The same scenes as a YOLO export (names [ring, block, disc]) and as Pascal VOC (sorted names)."""
    root = tmp_path_factory.mktemp('layouts')
    write_detection_scenes(root / 'yolo', 'yolo', COUNTS)
    reorder_yolo(str(root / 'yolo'), ORDER)
    write_detection_scenes(root / 'voc', 'voc', COUNTS)
    return str(root / 'yolo'), str(root / 'voc')


@pytest.fixture(scope='module')
def checkpoints(layouts, tmp_path_factory):
    """A FOMO trained briefly on the YOLO export (its checkpoint carries the names), and the same weights
    without names (a checkpoint from an older tool)."""
    work = str(tmp_path_factory.mktemp('train'))
    run_tool('train.py', FOMO, '--work-dir', work, '--cfg-options', *opts(layouts[0]), 'epochs=12')
    named = shutil.copy(osp.join(work, 'epoch_12.pth'), osp.join(work, 'fomo.pth'))
    state = torch.load(named, map_location='cpu')
    assert list(state['meta']['dataset_meta']['classes']) == ORDER  # training wrote them
    nameless = osp.join(work, 'old.pth')
    torch.save(dict(state_dict=state['state_dict'], meta={}), nameless)
    return named, nameless


def test_metrics(model_file, root, work):
    assert run_inprocess('test.py', FOMO, model_file, '--work-dir', work, '--cfg-options', *opts(root)) in (None, 0)
    with open(osp.join(work, 'results.json')) as f:
        results = json.load(f)
    return results


test_metrics.__test__ = False  # a helper, not a test


def counts(results):
    return tuple(results['test'][f'fomo/{k}'] for k in ('tp', 'fp', 'fn'))


def test_checkpoint_scores_the_same_on_both_layouts(layouts, checkpoints, tmp_path):
    yolo, voc = layouts
    named, nameless = checkpoints
    on_yolo = test_metrics(named, yolo, str(tmp_path / 'yolo'))
    on_voc = test_metrics(named, voc, str(tmp_path / 'voc'))
    assert on_yolo['classes'] == on_voc['classes'] == ORDER
    assert counts(on_voc) == counts(on_yolo) and on_voc['test']['fomo/f1'] == on_yolo['test']['fomo/f1']
    assert sum(counts(on_yolo)[:1]) > 0  # the model does predict the objects it is scored on
    # what happened before names were compared: the same weights, ids taken as they are
    old = test_metrics(nameless, voc, str(tmp_path / 'old'))
    assert old['classes'] == ['block', 'disc', 'ring'] and counts(old) != counts(on_yolo)


def test_dataset_with_other_names_is_refused_or_scored_on_shared_classes(layouts, checkpoints, tmp_path):
    _, voc = layouts
    named, _ = checkpoints
    renamed = str(tmp_path / 'voc_renamed')
    shutil.copytree(voc, renamed)
    ann = osp.join(renamed, 'VOCdevkit', 'VOC2007', 'Annotations')
    for f in sorted(__import__('os').listdir(ann)):
        path = osp.join(ann, f)
        text = open(path).read().replace('<name>disc</name>', '<name>coin</name>')
        open(path, 'w').write(text)
    line = tool_error('test.py', FOMO, named, '--work-dir', str(tmp_path / 'w'), '--cfg-options', *opts(renamed))
    assert 'class names differ: model [ring, block, disc] vs dataset [block, coin, ring]' in line, line
    assert 'class_match=shared' in line
    shared = run_inprocess('test.py', FOMO, named, '--work-dir', str(tmp_path / 's'), '--cfg-options',
                           *opts(renamed), 'class_match=shared')
    assert shared in (None, 0)
    results = json.load(open(tmp_path / 's' / 'results.json'))['test']
    assert 'fomo/disc_f1' not in results and 'fomo/ring_f1' in results


def test_exported_files_carry_names_and_are_scored_by_name(layouts, checkpoints, tmp_path):
    from sscma.deploy import model_class_names, read_export_meta
    yolo, voc = layouts
    named, _ = checkpoints
    work = str(tmp_path / 'export')
    run_tool('export.py', FOMO, named, '--targets', 'onnx', 'tflite', 'tflm', '--precisions', 'float32', 'int8',
             '--calib-batches', '2', '--latency-runs', '1', '--work-dir', work, '--cfg-options', *opts(yolo))
    report = json.load(open(osp.join(work, 'export_report.json')))
    exports = {(e['target'], e['precision']): e for e in report['exports']}
    assert report['classes'] == ORDER
    for key in (('onnx', 'float32'), ('onnx', 'int8'), ('tflite', 'int8'), ('tflm', 'int8')):
        meta = read_export_meta(exports[key]['file'])
        assert meta['classes'] == ORDER and meta['task'] == report['task'], key
        assert meta['input']['shape'] == [1, 3, 64, 64]
    header = open(exports[('tflm', 'int8')]['tflm']['header']).read()
    assert '#define FOMO_INT8_NUM_CLASSES 3' in header and '#define FOMO_INT8_INPUT_WIDTH 64' in header
    constants = read_export_meta(exports[('tflm', 'int8')]['file'])['output']['constants']
    assert constants['output_stride'] == 64 // report['output']['shape'][-1] == 8  # an 8x8 grid of 8 px cells
    assert f'#define FOMO_INT8_OUTPUT_STRIDE 8\n#define FOMO_INT8_SCORE_THRESHOLD {constants["score_threshold"]:.9g}f' \
        in header
    assert 'const char* const fomo_int8_labels[3] = {"ring", "block", "disc"};' in \
        open(exports[('tflm', 'int8')]['file']).read()
    for key in (('onnx', 'float32'), ('tflite', 'int8')):
        path = exports[key]['file']
        assert model_class_names(path) == ORDER
        on_voc = test_metrics(path, voc, str(tmp_path / key[0]))
        assert on_voc['classes'] == ORDER
        assert counts(on_voc) == tuple(exports[key]['metrics'][f'fomo/{k}'] for k in ('tp', 'fp', 'fn')), key


def test_load_from_keeps_the_checkpoint_class_order(layouts, checkpoints, tmp_path):
    """Fine-tuning on the VOC layout from the YOLO-trained checkpoint keeps [ring, block, disc], so the head's
    rows keep their meaning, and the new checkpoint says so."""
    _, voc = layouts
    named, _ = checkpoints
    work = str(tmp_path / 'finetune')
    proc = run_tool('train.py', FOMO, '--work-dir', work, '--load-from', named, '--cfg-options', *opts(voc),
                    'epochs=1')
    assert 'classes mapped by name: model [ring, block, disc] vs dataset [block, disc, ring]' in \
        proc.stdout + proc.stderr
    state = torch.load(osp.join(work, 'epoch_1.pth'), map_location='cpu')
    assert list(state['meta']['dataset_meta']['classes']) == ORDER


def test_training_refuses_a_validation_split_in_another_class_order(roboflow_root, tmp_path):
    """A valid/ json whose category ids give the same names in another order would score the validation set
    (and choose the best checkpoint) with the classes crossed: the run stops on its first line of training."""
    data = str(tmp_path / 'data')
    shutil.copytree(roboflow_root, data)
    path = osp.join(data, 'valid', '_annotations.coco.json')
    coco = json.load(open(path))
    swap = {7: 3, 3: 7}
    for cat in coco['categories']:
        cat['id'] = swap.get(cat['id'], cat['id'])
    for ann in coco['annotations']:
        ann['category_id'] = swap.get(ann['category_id'], ann['category_id'])
    json.dump(coco, open(path, 'w'))
    line = tool_error('train.py', FOMO, '--work-dir', str(tmp_path / 'w'), '--cfg-options', *fomo_opts(data), 'epochs=1')
    assert "the validation data numbers its classes ['disc', 'block'], the training data ['block', 'disc']" in line
