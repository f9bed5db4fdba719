"""DDP on CPU through torchrun (gloo), as a user runs it: one machine with 2 processes, a resumed run, and two
"nodes" (two torchrun launches) on 127.0.0.1. Tiny class folders, workers=0: each run takes ~40 s on 2 cores.

A test-only hook, imported by a config written to tmp (``custom_imports``), records the training images each
rank received, so the tests can check the sampler gave the ranks disjoint halves.
"""
import contextlib
import glob
import json
import os
import os.path as osp
import shutil
import socket
import subprocess
import sys
import weakref
from types import SimpleNamespace

import pytest
import torch

from tests.conftest import write_class_folders

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLS = osp.join(REPO, 'configs/classification/mobilenetv2_0.35_digits.py')
PER_CLASS = 8  # 16 training images: 8 per rank

RECORDER = '''
import json, os
from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import Hook
from sscma.registry import HOOKS


@HOOKS.register_module()
class TrainSampleRecorder(Hook):
    """Append the image paths of every training batch to samples_rank<R>.jsonl in the work dir."""

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        paths = [s.img_path for s in data_batch['data_samples']]
        with open(os.path.join(runner.work_dir, f'samples_rank{get_rank()}.jsonl'), 'a') as f:
            f.write(json.dumps(dict(epoch=runner.epoch, world=get_world_size(), paths=paths)) + '\\n')
'''


@pytest.fixture(scope='module')
def ddp_setup(tmp_path_factory):
    root = tmp_path_factory.mktemp('ddp')
    data = write_class_folders(root / 'data', ['a', 'b'], per_class=PER_CLASS)
    (root / 'sample_recorder.py').write_text(RECORDER)
    base = osp.relpath(CLS, root)  # relative, so that top-level overrides reach the base (sscma.utils.load_config)
    (root / 'ddp_cls.py').write_text(
        f"_base_ = [{base!r}]\n"
        "custom_imports = dict(imports=['sample_recorder'], allow_failed_imports=False)\n"
        "custom_hooks = [dict(type='TrainSampleRecorder')]  # RunSummaryHook etc. come with default_hooks\n"
        "vis_backends = [dict(type='LocalVisBackend')]  # no TensorBoard: its import costs seconds per process\n"
        "visualizer = dict(type='mmengine.Visualizer', vis_backends=vis_backends, name='visualizer')\n")
    return SimpleNamespace(root=root, data=data, config=str(root / 'ddp_cls.py'))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def torchrun(setup, work, *torchrun_args, extra=(), epochs=1):
    """The torchrun command line of a tiny DDP training, and its environment."""
    cmd = [sys.executable, '-m', 'torch.distributed.run', *torchrun_args, 'tools/train.py', setup.config,
           '--launcher', 'pytorch', '--work-dir', str(work), *extra, '--cfg-options', f'data_root={setup.data}',
           'num_classes=2', f'max_epochs={epochs}', 'batch=4', 'workers=0']
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, str(setup.root)]))
    env.pop('OMP_NUM_THREADS', None)
    return cmd, env


def run_ddp(setup, work, *torchrun_args, **kwargs):
    cmd, env = torchrun(setup, work, *torchrun_args, **kwargs)
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f'{" ".join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
    return proc


def samples_by_rank(work):
    found = {}
    for path in sorted(glob.glob(osp.join(work, 'samples_rank*.jsonl'))):
        rank = int(osp.basename(path)[len('samples_rank'):-len('.jsonl')])
        found[rank] = [json.loads(line) for line in open(path)]
    return found


def assert_disjoint_halves(work, setup, epoch):
    records = samples_by_rank(work)
    assert sorted(records) == [0, 1]
    seen = {}
    for rank, rows in records.items():
        assert {r['world'] for r in rows} == {2}
        seen[rank] = [p for r in rows if r['epoch'] == epoch for p in r['paths']]
    every = sorted(glob.glob(osp.join(setup.data, 'training', '*', '*.png')))
    assert len(seen[0]) == len(seen[1]) == len(every) // 2  # each rank trained on half ...
    assert not set(seen[0]) & set(seen[1])  # ... a different half
    assert sorted(seen[0] + seen[1]) == every


def assert_one_checkpoint_set(work, last_epoch):
    pths = sorted(osp.basename(p) for p in glob.glob(osp.join(work, '*.pth')))
    best = [p for p in pths if p.startswith('best_accuracy_top1_epoch_')]
    assert len(pths) == 2 and len(best) == 1 and f'epoch_{last_epoch}.pth' in pths, pths
    assert not glob.glob(osp.join(work, '*.tmp')) and not glob.glob(osp.join(work, '.*.tmp'))
    ckpt = torch.load(osp.join(work, f'epoch_{last_epoch}.pth'), map_location='cpu', weights_only=False)
    assert ckpt['meta']['epoch'] == last_epoch
    assert not any(k.startswith('module.') for k in ckpt['state_dict'])  # the model, not the DDP wrapper
    results = json.load(open(osp.join(work, 'results.json')))
    assert results['val']['epoch'] == last_epoch
    # validation is split between the ranks too, and gathered before the metric: all 16 images counted
    assert sum(map(sum, results['val_confusion_matrix'])) == 2 * PER_CLASS
    assert osp.getsize(osp.join(work, 'training_curves.png')) > 1000


@pytest.fixture(scope='module')
def ddp_run(ddp_setup, tmp_path_factory):
    """One epoch by 2 processes on this machine; returns the work dir and the output."""
    work = tmp_path_factory.mktemp('ddp_run') / 'work'
    proc = run_ddp(ddp_setup, work, '--nproc_per_node', '2', '--master_addr', '127.0.0.1', '--master_port',
                   str(free_port()))
    return SimpleNamespace(work=work, output=proc.stdout + proc.stderr)


def test_ddp_two_processes(ddp_setup, ddp_run):
    assert 'Distributed training: True' in ddp_run.output
    assert_disjoint_halves(ddp_run.work, ddp_setup, epoch=0)
    assert_one_checkpoint_set(ddp_run.work, 1)
    assert len(glob.glob(osp.join(ddp_run.work, '2*', '*.log'))) == 1  # one log folder (rank 0's timestamp)


def test_ddp_resume_continues(ddp_setup, ddp_run, tmp_path):
    work = tmp_path / 'work'
    shutil.copytree(ddp_run.work, work)
    with open(work / 'last_checkpoint', 'w') as f:  # it names the first run's file
        f.write(str(work / 'epoch_1.pth'))
    proc = run_ddp(ddp_setup, work, '--nproc_per_node', '2', '--master_addr', '127.0.0.1', '--master_port',
                   str(free_port()), extra=['--resume'], epochs=2)
    assert 'resumed epoch: 1' in proc.stdout + proc.stderr
    records = samples_by_rank(work)
    assert [r['epoch'] for r in records[0]] == [0, 0, 1, 1]  # epoch 1 only: the run continued, not restarted
    assert_disjoint_halves(work, ddp_setup, epoch=1)
    assert_one_checkpoint_set(work, 2)


def test_ddp_two_nodes_on_one_machine(ddp_setup, tmp_path):
    """torchrun's multi-node path: --nnodes 2, one process per node, the nodes meeting at 127.0.0.1; with
    --auto-scale-lr the lr follows the total batch (batch 4 x 2 processes)."""
    work = tmp_path / 'work'
    port = str(free_port())
    procs = []
    for node_rank in (0, 1):
        cmd, env = torchrun(ddp_setup, work, '--nnodes', '2', '--nproc_per_node', '1', '--node_rank',
                            str(node_rank), '--master_addr', '127.0.0.1', '--master_port', port,
                            extra=['--auto-scale-lr'])
        procs.append(subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True))
    outputs = []
    for p in procs:
        try:
            outputs.append(p.communicate(timeout=300)[0])
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
    for node_rank, (p, out) in enumerate(zip(procs, outputs)):
        assert p.returncode == 0, f'node {node_rank} failed:\n{out[-3000:]}'
    # mmengine's Runner.scale_lr: real batch = batch x world size; the classifier's base_batch_size is 32
    assert 'the current batch size is 8. Scaling the original LR by 0.25' in outputs[0]
    assert_disjoint_halves(work, ddp_setup, epoch=0)
    assert_one_checkpoint_set(work, 1)


# ------------------------------------------------------------------ in-process: no processes started
def test_launcher_pytorch_without_torchrun_says_how(monkeypatch):
    from sscma.apis.distributed import init_distributed
    from sscma.utils import ConfigError
    for var in ('RANK', 'LOCAL_RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ConfigError, match=r'--launcher pytorch: RANK, .* not set; start the tool with torchrun'):
        init_distributed('pytorch')


def test_slurm_and_mpi_on_cpu_say_what_to_do(monkeypatch):
    from sscma.apis.distributed import init_distributed
    from sscma.utils import ConfigError
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    for launcher in ('slurm', 'mpi'):
        with pytest.raises(ConfigError, match=f'--launcher {launcher} needs a GPU.*srun torchrun'):
            init_distributed(launcher)


def test_the_process_group_ends_with_the_run(monkeypatch):
    """A finished run meets the other ranks at a barrier before the group is destroyed; a failed one does not
    wait for them (they may never come), and the group is destroyed all the same. A DDP wrapper left in a
    reference cycle (as the Runner leaves it) is freed first: it holds the group, which would otherwise be freed
    during the interpreter's exit, when gloo aborts a process whose peer has gone."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from sscma.apis.distributed import process_group_teardown
    barriers = []
    monkeypatch.setattr(dist, 'barrier', lambda *a, **k: barriers.append(1))
    for fails in (False, True):
        dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{free_port()}', rank=0, world_size=1)
        wrapped = []
        with pytest.raises(RuntimeError) if fails else contextlib.nullcontext():
            with process_group_teardown():
                cycle = SimpleNamespace(model=DistributedDataParallel(torch.nn.Linear(2, 1)))
                cycle.self = cycle
                wrapped.append(weakref.ref(cycle.model))
                del cycle
                assert wrapped[0]() is not None  # only the collector frees it
                if fails:
                    raise RuntimeError('a rank failed')
        assert wrapped[0]() is None
        assert not dist.is_initialized() and barriers == [1]
    with process_group_teardown():  # no group (launcher none): nothing to do
        pass


def test_cpu_ddp_wrapper_gets_no_device_ids(monkeypatch):
    from mmengine.config import Config

    import sscma.apis.distributed as distributed
    started = []
    monkeypatch.setattr(distributed, 'init_distributed', lambda *a: started.append(a))
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(timeout=1800))))
    distributed.configure_distributed(cfg, 'pytorch')
    assert started == [('pytorch', None, 1800)]  # backend: None = gloo on CPU, nccl on GPU
    assert cfg.launcher == 'pytorch'
    assert cfg.model_wrapper_cfg.type == 'MMDistributedDataParallel'
    assert cfg.model_wrapper_cfg.device_ids is None  # torch refuses device_ids for a model on the CPU


def test_cpu_threads_split_between_local_processes(monkeypatch):
    from sscma.engine.hooks import cpu_threads_hook as hook_module
    assert hook_module.default_cpu_threads(0, 2, cores=16) == 8
    assert hook_module.default_cpu_threads(2, 2, cores=16) == 6
    assert hook_module.default_cpu_threads(0, 2, cores=2) == 1
    assert hook_module.default_cpu_threads(2, 1, cores=2) == 1
    # other processes' load: a busy core is left to them (2 threads beside another training: 27x slower)
    assert hook_module.default_cpu_threads(0, 1, cores=2, busy=1.0) == 1
    assert hook_module.default_cpu_threads(0, 1, cores=2, busy=0.3) == 2
    assert hook_module.default_cpu_threads(0, 2, cores=16, busy=4.0) == 6
    assert 0.0 <= hook_module.busy_cores(0.05) <= os.cpu_count()
    monkeypatch.setattr(hook_module, 'busy_cores', lambda: 0.0)
    set_to = []
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    monkeypatch.setattr(torch, 'set_num_threads', set_to.append)
    monkeypatch.setattr(torch, 'get_num_threads', lambda: 1)
    monkeypatch.setattr(hook_module, '_cpu_cores', lambda: 16)
    monkeypatch.setenv('LOCAL_WORLD_SIZE', '2')
    runner = SimpleNamespace(cfg=dict(train_dataloader=dict(num_workers=0)), distributed=True,
                             logger=SimpleNamespace(info=lambda msg: None))
    monkeypatch.setattr(hook_module, 'omp_threads_at_start', lambda: '1')  # torchrun's default
    hook_module.CpuThreadsHook().before_run(runner)
    monkeypatch.setattr(hook_module, 'omp_threads_at_start', lambda: '3')  # the user's choice
    hook_module.CpuThreadsHook().before_run(runner)
    assert set_to == [8]


def test_frozen_backbone_makes_ddp_look_for_unused_parameters(monkeypatch):
    """FreezeBackboneHook turns requires_grad off after DDP was built; without find_unused_parameters DDP
    stops at the second step ("Expected to have finished reduction in the prior iteration"; seen with
    torchrun on configs/classification/mobilenetv2_1.0_transfer.py)."""
    from mmengine.config import Config

    import sscma.apis.distributed as distributed
    monkeypatch.setattr(distributed, 'init_distributed', lambda *a: None)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    frozen = Config(dict(custom_hooks=[dict(type='FreezeBackboneHook', freeze_epochs=2)]))
    distributed.configure_distributed(frozen, 'pytorch')
    assert frozen.find_unused_parameters is True and frozen.model_wrapper_cfg.find_unused_parameters is True
    plain = Config(dict(custom_hooks=[dict(type='FreezeBackboneHook', freeze_epochs=0)]))
    distributed.configure_distributed(plain, 'pytorch')
    assert 'find_unused_parameters' not in plain and plain.model_wrapper_cfg.find_unused_parameters is False
