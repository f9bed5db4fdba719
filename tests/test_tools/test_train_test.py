"""tools/train.py and tools/test.py as a user runs them (subprocesses, tiny data, CPU)."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from sscma.utils import register_all_modules

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLS = 'configs/classification/mobilenetv2_0.35_digits.py'
FOMO = 'configs/fomo/fomo_mobnetv2.py'
FAST = ['workers=0', 'batch=8']


def run_tool(tool, *args, check=True):
    proc = subprocess.run([sys.executable, osp.join('tools', tool), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f'{tool} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}')
    return proc


def load_ckpt(path):
    register_all_modules()
    return torch.load(path, map_location='cpu')  # weights_only=True (torch default) with our allow-list


@pytest.fixture(scope='module')
def cls_run(folder_root, tmp_path_factory):
    work = str(tmp_path_factory.mktemp('cls_run'))
    run_tool('train.py', CLS, '--work-dir', work, '--cfg-options', f'data_root={folder_root}', 'num_classes=3',
             'epochs=1', *FAST)
    return work


def test_classifier_train_writes_outputs(cls_run):
    results = json.load(open(osp.join(cls_run, 'results.json')))
    assert 0.0 <= results['val']['accuracy/top1'] <= 100.0
    assert len(results['val']['single-label/precision_classwise']) == 3
    assert results['classes'] == ['dog', 'cat', 'fox']
    assert len(results['val_confusion_matrix']) == 3 and sum(map(sum, results['val_confusion_matrix'])) == 18
    for png in ('confusion_matrix_val.png', 'training_curves.png'):
        assert osp.getsize(osp.join(cls_run, png)) > 1000
    assert osp.isfile(results['best']['checkpoint'])


def test_classifier_test_tool(cls_run, folder_root):
    ckpt = osp.join(cls_run, 'epoch_1.pth')
    run_tool('test.py', CLS, ckpt, '--work-dir', cls_run, '--cfg-options', f'data_root={folder_root}',
             'num_classes=3', *FAST)
    results = json.load(open(osp.join(cls_run, 'results.json')))
    assert 'accuracy/top1' in results['test'] and results['test_checkpoint'] == ckpt
    assert 'val' in results  # the training results are kept
    assert osp.isfile(osp.join(cls_run, 'confusion_matrix_test.png'))


def test_resume_continues_with_optimizer_and_scheduler(cls_run, folder_root):
    proc = run_tool('train.py', CLS, '--work-dir', cls_run, '--resume', '--cfg-options', f'data_root={folder_root}',
                    'num_classes=3', 'epochs=2', *FAST)
    assert 'resumed epoch: 1' in proc.stdout + proc.stderr
    ckpt = load_ckpt(osp.join(cls_run, 'epoch_2.pth'))
    assert ckpt['meta']['epoch'] == 2
    assert ckpt['optimizer']['state']  # AdamW moments were carried on
    assert ckpt['param_schedulers']


def test_fomo_train_and_test(roboflow_root, tmp_path):
    work = str(tmp_path)
    opts = ['--cfg-options', f'data_root={roboflow_root}', 'epochs=2', 'imgsz=(64,64)', *FAST]
    run_tool('train.py', FOMO, '--work-dir', work, *opts)
    results = json.load(open(osp.join(work, 'results.json')))
    assert {'fomo/f1', 'fomo/tp', 'fomo/fp', 'fomo/fn', 'fomo/disc_f1'} <= set(results['val'])
    # the validation loss of each epoch, not smoothed over the epochs before it (mmengine's default for losses)
    val_records = [r for r in map(json.loads, open(glob.glob(osp.join(work, '*', 'vis_data', 'scalars.json'))[0]))
                   if 'fomo/f1' in r]
    assert [r['step'] for r in val_records] == [1, 2] and val_records[0]['val_loss'] > 0
    assert val_records[-1]['val_loss'] == pytest.approx(results['val']['val_loss'], rel=1e-9)
    assert results['val']['val_loss'] == pytest.approx(results['val']['val_loss_cls'], rel=1e-9)
    # 4 valid images, 3 of them with 2 objects each
    assert results['val']['fomo/tp'] + results['val']['fomo/fn'] == 6
    run_tool('test.py', FOMO, osp.join(work, 'epoch_2.pth'), '--work-dir', work, *opts)
    results = json.load(open(osp.join(work, 'results.json')))
    assert results['test']['fomo/tp'] + results['test']['fomo/fn'] == 6


@pytest.mark.parametrize('args, message', [
    (['--cfg-options', 'data_root=/no/such/folder'], 'data_root=/no/such/folder does not exist'),
    (['--cfg-options', 'model.head.type=FomoHed'], "unknown type 'FomoHed'.*did you mean 'FomoHead'"),
    (['--cfg-options', 'num_classes=3', 'data_root={roboflow}'], 'num_classes=3 but .* defines 2 classes'),
    (['--resume', '/no/ckpt.pth'], r'--resume /no/ckpt.pth: no such checkpoint file'),
])
def test_user_mistakes_give_one_clear_line(args, message, roboflow_root, tmp_path):
    import re
    args = [a.replace('{roboflow}', roboflow_root) for a in args]
    proc = run_tool('train.py', FOMO, '--work-dir', str(tmp_path), *args, check=False)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('error: ') and re.search(message, last), proc.stderr[-2000:]
    assert 'Traceback' not in proc.stderr
    assert not any(f.endswith('.pth') for f in os.listdir(tmp_path))


def test_missing_checkpoint_for_test_tool(tmp_path):
    proc = run_tool('test.py', FOMO, str(tmp_path / 'none.pth'), check=False)
    assert proc.returncode != 0 and 'checkpoint file not found' in proc.stderr


@pytest.mark.parametrize('monitor', ['accuracy/top1', 'val_loss'])
def test_early_stopping_ends_training(monitor, folder_root, tmp_path):
    """mmengine's EarlyStoppingHook from a config, on a metric or on the validation loss: no improvement for
    `patience` validations stops the run."""
    cfg = tmp_path / 'early_stop.py'
    cfg.write_text(f"_base_ = ['{osp.join(REPO, CLS)}']\n"
                   "custom_hooks = [\n"
                   f"    dict(type='EarlyStoppingHook', monitor='{monitor}', patience=1, min_delta=1000)]\n")
    work = tmp_path / 'work'
    run_tool('train.py', str(cfg), '--work-dir', str(work), '--cfg-options', f'data_root={folder_root}',
             'num_classes=3', 'epochs=6', *FAST)
    assert osp.isfile(work / 'epoch_2.pth') and not osp.exists(work / 'epoch_3.pth')
    assert open(work / 'last_checkpoint').read().strip().endswith('epoch_2.pth')
