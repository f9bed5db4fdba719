"""sscma.utils.checkpoint: one reader / fitter behind every loader of weights."""
import pytest
import torch
from torch import nn

from sscma.utils import ConfigError
from sscma.utils.checkpoint import (CheckpointError, check_checkpoint_fits, fit_state_dict, load_state_dict,
                                    match_state_dict, read_checkpoint)


def small(classes=3):
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, classes))


def test_reads_ddp_checkpoint_and_strips_module_prefix(tmp_path):
    model = small()
    path = tmp_path / 'ddp.pth'
    torch.save(dict(state_dict={f'module.{k}': v for k, v in model.state_dict().items()}, meta={}), path)
    state = load_state_dict(str(path))
    assert list(state) == list(model.state_dict())
    check_checkpoint_fits(small(), str(path), 'cfg.py')  # fits exactly: no error


def test_fit_reports_reshaped_missing_unexpected(tmp_path):
    own = small(3).state_dict()
    ckpt = dict(small(5).state_dict())
    del ckpt['1.running_mean']
    ckpt['extra.weight'] = torch.zeros(1)
    merged, fit = fit_state_dict(own, ckpt)
    assert fit.reshaped == [('3.weight', (5, 4), (3, 4)), ('3.bias', (5, ), (3, ))]
    assert fit.missing == ['1.running_mean'] and fit.unexpected == ['extra.weight'] and not fit.exact
    assert list(merged) == list(own) and merged['3.weight'] is own['3.weight']
    _, report = match_state_dict(own, ckpt)  # transfer learning's view: BatchNorm counters left out
    assert '1.num_batches_tracked' not in report['loaded'] and '0.weight' in report['loaded']
    path = tmp_path / 'other.pth'
    torch.save(dict(state_dict=ckpt), path)
    with pytest.raises(ConfigError, match=r'does not match the model of cfg\.py: shape mismatch \(checkpoint vs '
                       r'model\) 3\.weight \(5, 4\) vs \(3, 4\).*1 model keys missing.*1 unexpected keys'):
        check_checkpoint_fits(small(3), str(path), 'cfg.py', error=ConfigError)


def test_unreadable_files_say_why(tmp_path):
    text = tmp_path / 'notes.pth'
    text.write_text('not a checkpoint')
    with pytest.raises(CheckpointError, match='not a PyTorch checkpoint that loads with weights_only=True'):
        read_checkpoint(str(text))
    with pytest.raises(ConfigError, match=r'cannot read checkpoint .*notes\.pth: not a PyTorch checkpoint'):
        check_checkpoint_fits(small(), str(text), 'cfg.py', error=ConfigError)
    listed = tmp_path / 'list.pth'
    torch.save([1, 2], listed)
    with pytest.raises(ConfigError, match=r'checkpoint .*list\.pth holds a list, not a state dict'):
        check_checkpoint_fits(small(), str(listed), 'cfg.py', error=ConfigError)
