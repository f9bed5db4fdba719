"""``kill -9`` during training, then ``tools/train.py --resume``: a real process, killed mid-epoch."""
import glob
import os
import os.path as osp
import re
import signal
import subprocess
import sys
import time

import torch

from sscma.utils import register_all_modules

from ..conftest import write_class_folders

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLS = 'configs/classification/mobilenetv2_0.35_digits.py'
EPOCHS, ITERS = 3, 48  # 3 classes x 64 training images / batch 4
TRAIN_LINE = re.compile(r'Epoch\(train\)\s+\[(\d+)\]\[\s*(\d+)/(\d+)\]\s+lr: (\S+)')


def train_cmd(data_root, work, *extra):
    return [sys.executable, 'tools/train.py', CLS, '--work-dir', work, *extra, '--cfg-options',
            f'data_root={data_root}', 'num_classes=3', f'epochs={EPOCHS}', 'batch=4', 'workers=0',
            'default_hooks.logger.interval=1']


def logged_iterations(work, skip=()):
    """``{(epoch, iter): lr}`` of the training lines logged so far by the runs of ``work`` not in ``skip``."""
    found = {}
    for log in glob.glob(osp.join(work, '*', '*.log')):
        if log not in skip:
            with open(log, encoding='utf-8') as f:
                found.update({(int(m[1]), int(m[2])): m[4] for m in TRAIN_LINE.finditer(f.read())})
    return found


def test_sigkill_mid_epoch_then_resume_finishes_the_run(tmp_path):
    data = str(tmp_path / 'data')
    write_class_folders(data, ['a', 'b', 'c'], per_class=64, splits=('training', ), size=32)
    write_class_folders(data, ['a', 'b', 'c'], per_class=2, splits=('validation', 'test'), size=32)
    work = str(tmp_path / 'work')
    out = open(tmp_path / 'killed.out', 'w')
    proc = subprocess.Popen(train_cmd(data, work), cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.time() + 300  # generous: a loaded 2-core machine is slow, not broken
    try:
        # wait until epoch_1.pth is complete and epoch 2 has run a few iterations, then kill without warning
        while not (osp.isfile(osp.join(work, 'epoch_1.pth')) and (2, 3) in logged_iterations(work)):
            assert proc.poll() is None, open(tmp_path / 'killed.out').read()[-3000:]
            assert time.time() < deadline, 'training did not reach epoch 2'
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
        out.close()
    killed = logged_iterations(work)
    reached = max(i for e, i in killed if e == 2)
    assert 3 <= reached < ITERS and (3, 1) not in killed  # killed mid-epoch 2
    assert not osp.exists(osp.join(work, 'epoch_2.pth'))
    with open(osp.join(work, 'last_checkpoint')) as f:
        assert osp.basename(f.read().strip()) == 'epoch_1.pth'

    killed_logs = glob.glob(osp.join(work, '*', '*.log'))
    proc = subprocess.run(train_cmd(data, work, '--resume'), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f'resumed epoch: 1, iter: {ITERS}' in proc.stdout + proc.stderr
    resumed = logged_iterations(work, skip=killed_logs)
    # the scheduler continued from the checkpoint: epoch 2 starts at the lr the killed run had there
    assert resumed[2, 1] == killed[2, 1]
    assert min(resumed) == (2, 1) and max(resumed) == (EPOCHS, ITERS)

    with open(osp.join(work, 'last_checkpoint')) as f:
        last = f.read().strip()
    assert osp.basename(last) == f'epoch_{EPOCHS}.pth'
    register_all_modules()  # allow-lists the few non-tensor types mmengine checkpoints hold
    ckpt = torch.load(last, map_location='cpu', weights_only=True)
    assert ckpt['meta']['epoch'] == EPOCHS and ckpt['meta']['iter'] == EPOCHS * ITERS
    # AdamW's step counts run over the whole training: the killed epoch's steps were rolled back, not lost
    steps = {int(s['step']) for s in ckpt['optimizer']['state'].values()}
    assert steps == {EPOCHS * ITERS}
    # warm-up over epoch 1, cosine over epochs 2-3; a scheduler rebuilt at the resume would count only the
    # resumed iterations (cosine last_step 47)
    assert [s['last_step'] for s in ckpt['param_schedulers']] == [ITERS - 1, (EPOCHS - 1) * ITERS - 1]
    assert not glob.glob(osp.join(work, '.*.tmp'))  # no half-written checkpoint left by the kill
    print(f'\nkilled at epoch 2 iteration {reached}/{ITERS} (lr {killed[2, 1]} at its first iteration); resumed from '
          f'epoch_1.pth: epoch 2 lr {resumed[2, 1]}, ended at {osp.basename(last)} (meta epoch '
          f'{ckpt["meta"]["epoch"]}, iter {ckpt["meta"]["iter"]}, AdamW step {steps.pop()})')
