"""Fake int8 quantisation for QAT, and tools/train.py --qat."""
import os.path as osp

import pytest
import torch
from torch import nn

from sscma.models.utils.fake_quant import FakeQuantConv2d, FakeQuantLinear, convert_to_fake_quant, \
    fake_quantize_weight
from tests.test_tools.test_train_test import CLS, FAST, load_ckpt, run_tool


def test_weight_rounding_is_per_channel_int8():
    w = torch.tensor([[0.5, -0.25, 0.1], [10.0, 3.0, -7.0]], requires_grad=True)
    q = fake_quantize_weight(w)
    for row, qrow in zip(w.detach(), q.detach()):
        scale = row.abs().max() / 127
        levels = qrow / scale
        assert torch.allclose(levels, levels.round(), atol=1e-4)  # on the int8 grid of its own channel
        assert (qrow - row).abs().max() <= scale / 2 + 1e-6
        assert levels.abs().max() <= 127
    assert not torch.equal(q, w)  # 0.1 is not on the first channel's grid
    q.sum().backward()
    assert torch.equal(w.grad, torch.ones_like(w))  # straight-through


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU6(), nn.Flatten(), nn.Linear(8 * 6 * 6, 4))


def test_conversion_keeps_state_dict_and_simulates_int8():
    net = _net()
    ref = _net()
    keys = list(net.state_dict())
    converted = convert_to_fake_quant(net)
    assert converted == ['0', '4'] and isinstance(net[0], FakeQuantConv2d) and isinstance(net[4], FakeQuantLinear)
    assert list(net.state_dict()) == keys  # a QAT checkpoint loads into the float model
    ref.load_state_dict(net.state_dict())
    x = torch.rand(16, 3, 8, 8) * 4 - 2
    net.train()
    net(x)  # first batch sets the activation ranges
    assert float(net[0].act_min) == pytest.approx(float(x.min()))
    assert float(net[0].act_max) == pytest.approx(float(x.max()))
    net.eval()
    ref.eval()
    with torch.no_grad():
        out, want = net(x), ref(x)
    assert not torch.equal(out, want)  # rounding happened
    assert (out - want).abs().max() < 0.05 * want.abs().max()  # ... at int8 precision
    # the input of the first conv is rounded to 255 levels over [min, max]
    scale = (float(x.max()) - float(x.min())) / 255
    xq = net[0]._fake_quantize_input(x)
    assert (xq - x).abs().max() <= scale / 2 + 1e-5 and len(torch.unique(xq)) <= 256


def test_train_qat_needs_a_float_checkpoint(folder_root, tmp_path):
    proc = run_tool('train.py', CLS, '--qat', '--work-dir', str(tmp_path), '--cfg-options',
                    f'data_root={folder_root}', 'num_classes=3', *FAST, check=False)
    assert proc.returncode != 0 and 'Traceback' not in proc.stderr
    assert '--qat fine-tunes a trained float model: give its checkpoint with --load-from' in proc.stderr


def test_train_qat_from_checkpoint(folder_root, tmp_path):
    opts = ['--cfg-options', f'data_root={folder_root}', 'num_classes=3', 'epochs=1', *FAST]
    run_tool('train.py', CLS, '--work-dir', str(tmp_path / 'float'), *opts)
    proc = run_tool('train.py', CLS, '--qat', '--load-from', str(tmp_path / 'float' / 'epoch_1.pth'), '--work-dir',
                    str(tmp_path / 'qat'), *opts)
    assert 'QuantizationAwareTrainingHook: 53 Conv2d/Linear layers' in proc.stdout + proc.stderr
    qat = load_ckpt(str(tmp_path / 'qat' / 'epoch_1.pth'))['state_dict']
    plain = load_ckpt(str(tmp_path / 'float' / 'epoch_1.pth'))['state_dict']
    assert list(qat) == list(plain)  # the plain config loads it (tools/test.py, tools/export.py)
    assert any(not torch.equal(qat[k], plain[k]) for k in plain if plain[k].dim() == 4)  # conv weights trained
    assert osp.isfile(tmp_path / 'qat' / 'results.json')
