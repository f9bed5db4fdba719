"""Transfer learning in the runner: partial loading with a one-line report; backbone freeze + lr multiplier."""
from types import SimpleNamespace

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint_to_model
from torch import nn

from sscma.engine.hooks import FreezeBackboneHook, LoadMatchingWeightsHook, match_state_dict


class _Net(BaseModel):

    def __init__(self, num_classes=3):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(4, num_classes)

    def forward(self, inputs, labels=None, mode='tensor'):
        logits = self.head(self.backbone(torch.stack(inputs)))
        if mode == 'loss':
            return dict(loss=nn.functional.cross_entropy(logits, torch.as_tensor(labels)))
        return logits


class _Data(torch.utils.data.Dataset):

    def __init__(self, n=16):
        gen = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 3, 8, 8, generator=gen) * 3 + 1
        self.y = torch.arange(n) % 3

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return dict(inputs=self.x[i], labels=int(self.y[i]))


def _runner(model, load_from, lines):
    """What ``LoadMatchingWeightsHook`` uses of a runner; warnings go to ``lines``."""
    return SimpleNamespace(model=model, _load_from=load_from, logger=SimpleNamespace(warning=lines.append))


def test_head_mismatch_loads_the_rest_and_reports_one_line(capsys):
    src, dst = _Net(num_classes=5), _Net(num_classes=3)
    with torch.no_grad():
        for p in src.parameters():
            p.add_(1.0)
    fresh_head = dst.head.weight.detach().clone()
    ckpt = dict(state_dict={'module.' + k: v for k, v in src.state_dict().items()})
    ckpt['state_dict']['module.extra.weight'] = torch.zeros(2)
    lines = []
    LoadMatchingWeightsHook().after_load_checkpoint(_runner(dst, 'old.pth', lines), ckpt)
    _load_checkpoint_to_model(dst, ckpt)  # what mmengine's Runner.load_checkpoint does next
    assert len(lines) == 1 and '\n' not in lines[0], lines
    assert lines[0].startswith('load_from old.pth: loaded 6/8 tensors')  # conv w/b, BN w/b/mean/var
    assert 'head.weight [5, 4]->[3, 4]' in lines[0] and 'head.bias [5]->[3]' in lines[0]
    assert 'ignored 1 the model does not have: extra.weight' in lines[0]
    assert 'mismatch' not in capsys.readouterr().out  # mmengine's multi-line table is gone
    assert torch.equal(dst.backbone[0].weight, src.backbone[0].weight)
    assert torch.equal(dst.backbone[1].running_var, src.backbone[1].running_var)
    assert torch.equal(dst.head.weight, fresh_head)


def test_exact_checkpoint_is_untouched_and_silent():
    model = _Net()
    ckpt = dict(state_dict=model.state_dict())
    before, lines = ckpt['state_dict'], []
    LoadMatchingWeightsHook().after_load_checkpoint(_runner(model, 'same.pth', lines), ckpt)
    assert ckpt['state_dict'] is before and not lines


def test_match_state_dict_reports_backbone_only_checkpoint():
    model = _Net()
    backbone_only = {k: v for k, v in model.state_dict().items() if k.startswith('backbone.')}
    merged, report = match_state_dict(model.state_dict(), backbone_only)
    assert list(merged) == list(model.state_dict())
    assert report['missing'] == ['head.weight', 'head.bias'] and not report['reshaped']
    assert all(k.startswith('backbone.') for k in report['loaded'])
    assert not any(k.endswith('num_batches_tracked') for k in report['loaded'])


class _Recorder(Hook):
    priority = 'LOWEST'

    def __init__(self):
        self.snapshots = []

    def after_train_epoch(self, runner):
        model = runner.model
        groups = runner.optim_wrapper.optimizer.param_groups
        bb = {id(p) for p in model.backbone.parameters()}
        lrs = {('backbone' if id(g['params'][0]) in bb else 'head'): g['lr'] for g in groups}
        self.snapshots.append(dict(conv=model.backbone[0].weight.detach().clone(),
                                   mean=model.backbone[1].running_mean.clone(),
                                   head=model.head.weight.detach().clone(), lrs=lrs))


def test_freeze_then_finetune_with_lr_multiplier(tmp_path):
    model = _Net()
    conv0, mean0, head0 = (model.backbone[0].weight.detach().clone(), model.backbone[1].running_mean.clone(),
                           model.head.weight.detach().clone())
    recorder = _Recorder()
    runner = Runner(
        model=model, work_dir=str(tmp_path), experiment_name='freeze',
        train_dataloader=dict(dataset=_Data(), batch_size=4, num_workers=0, collate_fn=dict(type='pseudo_collate'),
                              sampler=dict(type='DefaultSampler', shuffle=True)),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.01, weight_decay=0.01),
                           paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1)})),
        train_cfg=dict(by_epoch=True, max_epochs=2),
        default_hooks=dict(checkpoint=None, logger=None),
        custom_hooks=[FreezeBackboneHook(freeze_epochs=1), recorder],
        default_scope='sscma')
    runner.train()
    frozen, tuned = recorder.snapshots
    assert torch.equal(frozen['conv'], conv0), 'backbone weights changed while frozen (weight decay included)'
    assert torch.equal(frozen['mean'], mean0), 'BatchNorm statistics changed while frozen'
    assert not torch.equal(frozen['head'], head0)
    assert not torch.equal(tuned['conv'], conv0) and not torch.equal(tuned['mean'], mean0)
    assert tuned['lrs']['backbone'] == pytest.approx(0.1 * tuned['lrs']['head'])
    assert frozen['lrs']['head'] == pytest.approx(0.01)
