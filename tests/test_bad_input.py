"""User mistakes, each fed to the tool a user would run: one clear line naming what is wrong, no partial output.

The tools run in-process (``python tools/X.py ARGS`` as ``runpy`` with ``sys.argv``), which is what makes
40 mistakes affordable; every case asserts the message (file / key / value at fault and what was expected)
and that the work dir, checkpoints and export folder are exactly as they were before the run.
"""
import json
import os
import os.path as osp
import re
import runpy
import shutil
import sys

import pytest
import torch
from mmengine.visualization import Visualizer

from sscma.registry import MODELS
from sscma.utils import load_config

from .conftest import write_class_folders

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CLS = osp.join(REPO, 'configs', 'classification', 'mobilenetv2_0.35_digits.py')
FOMO = osp.join(REPO, 'configs', 'fomo', 'fomo_mobnetv2.py')
FAST = ['workers=0', 'batch=4']


@pytest.fixture(autouse=True)
def forget_visualizer():
    yield
    Visualizer._instance_dict.clear()  # later tests build their own


def run_tool(tool, *args, capsys=None):
    """Run ``tools/<tool> ARGS`` in-process; return the ``error: ...`` line it stops with."""
    Visualizer._instance_dict.clear()  # each Runner gets its own visualizer (and log folder), as in a new process
    argv = sys.argv
    sys.argv = [tool, *map(str, args)]
    try:
        with pytest.raises(SystemExit) as exc:
            runpy.run_path(osp.join(REPO, 'tools', tool), run_name='__main__')
    finally:
        sys.argv = argv
    code = exc.value.code
    if isinstance(code, str):  # run_cli: sys.exit('error: ...')
        return code
    assert code == 2 and capsys is not None  # argparse: usage, then 'prog: error: ...' on stderr
    return 'error: ' + capsys.readouterr().err.strip().splitlines()[-1].split(' error: ', 1)[1]


def snapshot(folder):
    """Every file under ``folder`` with its size (None when the folder does not exist)."""
    if not osp.isdir(folder):
        return None
    return {osp.relpath(osp.join(d, f), folder): osp.getsize(osp.join(d, f))
            for d, _, files in os.walk(folder) for f in files}


def assert_error(line, pattern):
    assert line.startswith('error: ') and '\n' not in line, line
    assert re.search(pattern, line), f'{pattern!r} not in {line!r}'


@pytest.fixture(scope='module')
def ckpts(tmp_path_factory):
    """Checkpoints of the classification model for 3 classes and for the config's 10 (no training needed)."""
    folder = tmp_path_factory.mktemp('ckpts')
    paths = {}
    for n in (3, 10):
        model = MODELS.build(load_config(CLS, {'num_classes': n}).model)
        paths[n] = str(folder / f'cls{n}.pth')
        torch.save(dict(state_dict=model.state_dict(), meta=dict(epoch=1)), paths[n])
    (folder / 'notes.pth').write_text('not a checkpoint\n')
    paths['text'] = str(folder / 'notes.pth')
    return paths


# ------------------------------------------------------------------------------------- config and CLI
def _config_files(tmp_path):
    (tmp_path / 'syntax.py').write_text('epochs = (\n')
    (tmp_path / 'child.py').write_text("_base_ = ['./missing_base.py']\nepochs = 3\n")
    return tmp_path


@pytest.mark.parametrize('config, options, pattern', [
    ('{tmp}/nope.py', [], r'config file not found: .*nope\.py'),
    ('{tmp}/syntax.py', [], r'syntax\.py:1: invalid Python in config'),
    ('{tmp}/child.py', [], r'config file not found: .*missing_base\.py \(named in _base_ of .*child\.py\)'),
    (CLS, ['foo'], r"--cfg-options: 'foo' is not KEY=VALUE"),
    (CLS, ['=3'], r"--cfg-options: '=3' is not KEY=VALUE"),
    (CLS, ['epochs='], r"epochs='' \(--cfg-options\): expected a positive integer"),
    (CLS, ['epochs=-1'], r'epochs=-1 \(--cfg-options\): expected a positive integer'),
    (CLS, ['epochs=2.5'], r'epochs=2.5 \(--cfg-options\): expected a positive integer'),
    (CLS, ['lr=-0.1'], r'lr=-0.1 \(--cfg-options\): expected a positive number'),
    (CLS, ['imgsz=96'], r'imgsz=96 \(--cfg-options\): expected \(width, height\)'),
    (CLS, ['num_classes=0'], r'num_classes=0 \(--cfg-options\): expected a positive integer'),
    (CLS, ['epoch=3'], r"--cfg-options epoch=3: .*digits\.py has no variable or key 'epoch'; did you mean max_epochs\?"),
    (CLS, ['model.haed.num_classes=3'], r"model has no key 'haed' \(it has .*head.*\); did you mean head\?"),
    (CLS, ['model.head.num_clases=3'], r"LinearClsHead takes no argument 'num_clases'"),
    (CLS, ['model.head.type=mmpretrain.LinearClsHed'],
     r"unknown type 'mmpretrain.LinearClsHed'.*did you mean 'mmpretrain.LinearClsHead'"),
    (CLS, ['model.backbone.type=MobileNetV22'], r"unknown type 'MobileNetV22'.*did you mean 'MobileNetV2'"),
])
def test_config_mistakes(config, options, pattern, tmp_path, capsys):
    folder = tmp_path / 'cfg'
    folder.mkdir()
    config = config.replace('{tmp}', str(_config_files(folder)))
    work = tmp_path / 'work'
    line = run_tool('train.py', config, '--work-dir', work, '--cfg-options', *options, *FAST, capsys=capsys)
    assert_error(line, pattern)
    assert not work.exists()  # not even an empty log folder


def test_missing_checkpoints_for_train(tmp_path):
    work = tmp_path / 'work'
    line = run_tool('train.py', CLS, '--work-dir', work, '--load-from', tmp_path / 'old.pth')
    assert_error(line, r'--load-from .*old\.pth: no such checkpoint file')
    line = run_tool('train.py', CLS, '--work-dir', work, '--resume', tmp_path / 'old.pth')
    assert_error(line, r'--resume .*old\.pth: no such checkpoint file')
    assert not work.exists()


def test_resume_with_nothing_to_resume(tmp_path):
    work = tmp_path / 'work'
    work.mkdir()
    line = run_tool('train.py', CLS, '--work-dir', work, '--resume')
    assert_error(line, r'--resume: nothing to resume in .*work \(no last_checkpoint file\)')
    (work / 'last_checkpoint').write_text(str(work / 'epoch_3.pth'))  # its checkpoint was deleted
    line = run_tool('train.py', CLS, '--work-dir', work, '--resume')
    assert_error(line, r"last_checkpoint names '.*epoch_3\.pth', which does not exist")
    assert os.listdir(work) == ['last_checkpoint']


# --------------------------------------------------------------------------------- class-folder data
def _class_data(root, case):
    """A 3-class Sony-layout folder with one mistake made to it."""
    labels = {'cat': 0, 'dog': 1, 'fox': 2}
    write_class_folders(root, list(labels), per_class=2, size=16, labels=labels)
    if case == 'bad_json':
        (root / 'labels.json').write_text('{"cat": 0, "dog": 1,}')
    elif case == 'ids_gap':
        (root / 'labels.json').write_text(json.dumps({'cat': 0, 'dog': 2, 'fox': 3}))
    elif case == 'extra_class':
        shutil.copytree(root / 'training' / 'fox', root / 'training' / 'wolf')
    elif case == 'no_images':
        for d in (root / 'training').iterdir():
            shutil.rmtree(d)
            d.mkdir()
    elif case == 'not_images':
        for d in (root / 'training').iterdir():
            shutil.rmtree(d)
            d.mkdir()
            (d / 'notes.txt').write_text('photos to come')
    elif case == 'no_validation':
        shutil.rmtree(root / 'validation')
    return str(root)


@pytest.mark.parametrize('case, options, pattern', [
    ('missing', [], r'data_root=.*missing does not exist or is not a folder'),
    ('bad_json', [], r'labels\.json: not valid JSON \(.*line 1'),
    ('ids_gap', [], r'labels\.json: class ids must be 0\.\.2, each once; got \[0, 2, 3\]'),
    ('extra_class', [], r"class folders \['wolf'\] in .*training are not in .*labels\.json \(it lists"),
    ('ok', ['num_classes=5'], r"num_classes=5 but .*labels\.json defines 3 classes: \['cat', 'dog', 'fox'\]"),
    ('no_images', [], r'no images \(\.jpg, .*\) under .*training/<class>/$'),
    ('not_images', [], r'no images .* under .*training/<class>/; found 3 files that are not images: cat/notes\.txt'),
    ('no_validation', [], r'no "validation" folder in data_root=.*no_validation \(looked for \[.validation., '),
])
def test_class_folder_mistakes(case, options, pattern, tmp_path):
    root = tmp_path / case
    data_root = str(root) if case == 'missing' else _class_data(root, case)
    before = snapshot(data_root)
    work = tmp_path / 'work'
    line = run_tool('train.py', CLS, '--work-dir', work, '--cfg-options', f'data_root={data_root}',
                    *(options or ['num_classes=3']), *FAST)
    assert_error(line, pattern)
    assert not work.exists()
    assert snapshot(data_root) == before  # the dataset is only read


# ---------------------------------------------------------------------------------------- COCO data
def _coco_mistake(root, case):
    """Edit the train split of a Roboflow export copy so that it holds one mistake."""
    ann = root / 'train' / '_annotations.coco.json'
    data = json.loads(ann.read_text())
    if case == 'bad_json':
        ann.write_text(ann.read_text()[:-10])
        return
    if case == 'no_annotations':
        del data['annotations']
    elif case == 'negative_box':
        data['annotations'][1]['bbox'][2] = -4.0
    elif case == 'zero_box':
        data['annotations'][0]['bbox'][3] = 0
    elif case == 'missing_image':
        os.remove(root / 'train' / data['images'][2]['file_name'])
    elif case == 'unknown_category':
        data['annotations'][0]['category_id'] = 42
    elif case == 'unknown_image':
        data['annotations'][0]['image_id'] = 999
    ann.write_text(json.dumps(data))


@pytest.mark.parametrize('case, pattern', [
    ('bad_json', r'train/_annotations\.coco\.json: not valid JSON'),
    ('no_annotations', r'_annotations\.coco\.json: missing "annotations" list; not a COCO detection file'),
    ('negative_box', r'1 annotations have a bbox that is not \[x, y, width, height\] with width > 0 and height > 0: '
     r'id=2 \(img_000\.jpg\) bbox=\[.*, -4\.0, .*\]'),
    ('zero_box', r'1 annotations have a bbox .*: id=1 \(img_000\.jpg\) bbox=\[.*, 0\]'),
    ('missing_image', r'1 of 8 listed images are not in .*train: img_002\.jpg'),
    ('unknown_category', r'1 annotations have a category_id not in "categories" \(ids \[0, 3, 7\]\): '
     r'id=1 \(img_000\.jpg\) category_id=42'),
    ('unknown_image', r'1 annotations refer to an image_id not in "images": id=1 image_id=999'),
])
def test_coco_mistakes(case, pattern, roboflow_root, tmp_path):
    root = tmp_path / 'export'
    shutil.copytree(roboflow_root, root)
    _coco_mistake(root, case)
    work = tmp_path / 'work'
    line = run_tool('train.py', FOMO, '--work-dir', work, '--cfg-options', f'data_root={root}', *FAST)
    assert_error(line, pattern)
    assert not work.exists()


# ----------------------------------------------------------------------------- test.py and export.py
def test_test_tool_mistakes(ckpts, folder_root, tmp_path):
    work = tmp_path / 'work'
    opts = ['--work-dir', work, '--cfg-options', f'data_root={folder_root}', 'num_classes=3', *FAST]
    line = run_tool('test.py', CLS, tmp_path / 'best.pth', *opts)
    assert_error(line, r'checkpoint file not found: .*best\.pth')
    line = run_tool('test.py', CLS, ckpts[10], *opts)  # trained for 10 classes, tested with num_classes=3
    assert_error(line, r'checkpoint .*cls10\.pth does not match the model of .*digits\.py: shape mismatch '
                 r'\(checkpoint vs model\) head\.fc\.weight \(10, 1280\) vs \(3, 1280\)')
    line = run_tool('test.py', CLS, ckpts['text'], *opts)
    assert_error(line, r'cannot read checkpoint .*notes\.pth: not a PyTorch checkpoint')
    assert not work.exists()


@pytest.mark.parametrize('ckpt, extra, pattern', [
    ('missing', [], r'checkpoint file not found: .*missing\.pth'),
    (10, [], r'checkpoint .*cls10\.pth does not match the model of .*digits\.py: shape mismatch'),
    (3, ['--input-shape', '32'], r'--input-shape 32: give H W \(or C H W\)'),
    (3, ['--input-shape', '1', '32', '32'], r'--input-shape 1 32 32: the model takes 3-channel images, not 1'),
    (3, ['--input-shape', '0', '32'], r'--input-shape 0 32: sizes must be positive'),
])
def test_export_mistakes(ckpt, extra, pattern, ckpts, folder_root, tmp_path):
    path = str(tmp_path / 'missing.pth') if ckpt == 'missing' else ckpts[ckpt]
    before = snapshot(osp.dirname(path))
    line = run_tool('export.py', CLS, path, '--targets', 'onnx', '--precisions', 'float32', '--cfg-options',
                    f'data_root={folder_root}', 'num_classes=3', *FAST, *extra)
    assert_error(line, pattern)
    assert snapshot(osp.dirname(path)) == before  # no export/ folder, no file


# ------------------------------------------------------------------------------------- YOLO and VOC data
@pytest.mark.parametrize('fmt, case, pattern', [
    ('yolo', 'class_id', r"labels/train/train_000\.txt:1: class '5' is not an integer id in 0\.\.2 \(3 names\)"),
    ('yolo', 'pixels', r'labels/train/train_000\.txt:1: coordinates must be normalised to \[0, 1\]'),
    ('yolo', 'no_objects', r'data\.yaml: no annotations in the training split "train"'),
    ('labelimg', 'flipped', r'train/train_000\.xml: object 1 \(block\): box needs xmax > xmin'),
])
def test_yolo_voc_mistakes(fmt, case, pattern, tmp_path):
    from .detection_data import write_detection_scenes
    root = tmp_path / 'export'
    write_detection_scenes(root, fmt, dict(train=4, valid=2, test=2))
    if case == 'class_id':
        (root / 'labels' / 'train' / 'train_000.txt').write_text('5 0.5 0.5 0.2 0.2\n')
    elif case == 'pixels':
        (root / 'labels' / 'train' / 'train_000.txt').write_text('0 64 64 20 20\n')
    elif case == 'no_objects':
        for f in (root / 'labels' / 'train').iterdir():
            f.write_text('')
    elif case == 'flipped':
        xml = root / 'train' / 'train_000.xml'
        xml.write_text(xml.read_text().replace('<xmax>32</xmax>', '<xmax>1</xmax>'))
    before = snapshot(str(root))
    work = tmp_path / 'work'
    line = run_tool('train.py', FOMO, '--work-dir', work, '--cfg-options', f'data_root={root}', 'num_classes=3', *FAST)
    assert_error(line, pattern)
    assert not work.exists()
    assert snapshot(str(root)) == before
