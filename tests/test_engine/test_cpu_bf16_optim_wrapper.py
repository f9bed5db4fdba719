"""--amp: bfloat16 autocast on CPU (CpuBf16OptimWrapper), fp16 AmpOptimWrapper on GPU, a one-line refusal else."""
import json
import os.path as osp

import pytest
import torch

import sscma.apis.runner as runner_module
from sscma.apis import prepare_train_config
from sscma.cli import run_command
from sscma.engine import CpuBf16OptimWrapper
from sscma.utils import ConfigError
from tests.test_tools.test_train_test import CLS, FAST, run_tool


def test_forward_runs_in_bfloat16_and_weights_stay_float32():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(2))
    model(torch.rand(1, 3, 8, 8))
    wrapper = CpuBf16OptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    with wrapper.optim_context(model):
        out = model(torch.rand(2, 3, 8, 8))
    assert out.dtype == torch.bfloat16
    before = model[0].weight.detach().clone()
    wrapper.update_params(out.float().pow(2).mean())
    assert model[0].weight.dtype == torch.float32 and not torch.equal(before, model[0].weight)
    assert model(torch.rand(1, 3, 8, 8)).dtype == torch.float32  # outside the context: float32 again


def test_amp_picks_the_wrapper_for_the_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    monkeypatch.setattr(runner_module, 'cpu_has_bf16', lambda: True)
    assert prepare_train_config(CLS, amp=True).optim_wrapper.type == 'CpuBf16OptimWrapper'
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)  # config only: nothing is built here
    cfg = prepare_train_config(CLS, amp=True)
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper' and cfg.optim_wrapper.loss_scale == 'dynamic'


def test_amp_without_gpu_or_bf16_is_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    monkeypatch.setattr(runner_module, 'cpu_has_bf16', lambda: False)
    with pytest.raises(ConfigError, match='--amp needs a GPU'):
        prepare_train_config(CLS, amp=True)
    with pytest.raises(SystemExit) as stop:  # what `sscma train` / tools/train.py print: no traceback
        run_command('train', [CLS, '--amp', '--work-dir', str(tmp_path / 'work')])
    assert str(stop.value).startswith('error: --amp needs a GPU (fp16) or a CPU with native bfloat16')
    assert '\n' not in str(stop.value)
    assert not (tmp_path / 'work').exists()


@pytest.mark.skipif(not runner_module.cpu_has_bf16(), reason='this CPU has no native bfloat16')
def test_amp_trains_on_cpu(folder_root, tmp_path):
    work = str(tmp_path / 'amp')
    run_tool('train.py', CLS, '--amp', '--work-dir', work, '--cfg-options', f'data_root={folder_root}',
             'num_classes=3', 'max_epochs=1', *FAST)
    results = json.load(open(osp.join(work, 'results.json')))
    assert 0.0 <= results['val']['accuracy/top1'] <= 100.0
    assert "type='CpuBf16OptimWrapper'" in open(osp.join(work, osp.basename(CLS))).read()
