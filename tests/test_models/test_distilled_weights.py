"""The packaged ImageNet-distilled MobileNetV2 weights: offline, every width, recorded outputs, partial loads."""
import numpy as np
import pytest
import torch

from sscma.models.backbones import MobileNetV2
from sscma.models.utils import DistilledMobileNetV2
from sscma.utils.packaged_weights import distilled_weights, has_imagenet_weights
from sscma.utils import ConfigError, load_config

# mean of stage 2 and stage 7 on fixed_input(), recorded when the files were made (float32 CPU)
RECORDED = {0.1: (0.138131, 0.0738149), 0.35: (-0.0137073, 0.0768735)}


def fixed_input(channels: int = 3) -> torch.Tensor:
    """A deterministic non-square picture in [0, 1]: stripes and a gradient, different per channel."""
    y, x = torch.meshgrid(torch.arange(72.0), torch.arange(104.0), indexing='ij')
    planes = [0.5 + 0.5 * torch.sin(x / (3 + c) + y / (5 + 2 * c)) * torch.cos(y / 7) for c in range(channels)]
    return torch.stack(planes)[None]


def loaded(width: float, **kwargs) -> MobileNetV2:
    net = MobileNetV2(width, **kwargs)
    DistilledMobileNetV2()(net)
    return net.eval()


def test_every_recorded_width_is_packaged():
    assert sorted(distilled_weights()) == sorted(RECORDED)
    assert has_imagenet_weights(1.0) and has_imagenet_weights(0.35) and not has_imagenet_weights(0.5)


@pytest.mark.parametrize('width', sorted(RECORDED))
def test_packaged_file_loads_whole_and_gives_the_recorded_output(width):
    ckpt = torch.load(distilled_weights()[width], map_location='cpu', weights_only=True)
    assert ckpt['meta']['widen_factor'] == width and ckpt['meta']['input'] == 'RGB pixels / 255'
    assert all(v.dtype in (torch.float16, torch.int64) for v in ckpt['state_dict'].values())
    full = MobileNetV2(width, out_indices=(7, ))
    assert set(full.state_dict()) == set(ckpt['state_dict'])  # every layer of the full network, nothing else
    net = loaded(width, out_indices=(2, 7))
    with torch.no_grad():
        stage2, stage7 = net(fixed_input())
    assert stage2.shape == (1, net.out_channels[2], 9, 13) and stage7.shape == (1, 1280, 3, 4)
    assert (stage2.mean().item(), stage7.mean().item()) == pytest.approx(RECORDED[width], rel=1e-3)
    torch.manual_seed(0)
    with torch.no_grad():
        assert not torch.allclose(MobileNetV2(width, out_indices=(2, )).eval()(fixed_input())[0], stage2)


def test_a_cut_backbone_takes_its_prefix_and_a_gray_stem_sums_the_rgb_filters():
    full = loaded(0.35, out_indices=(2, 7))
    cut = loaded(0.35, out_indices=(2, ))
    gray = loaded(0.35, out_indices=(2, ), in_channels=1)
    x = fixed_input(1)
    with torch.no_grad():
        assert torch.equal(cut(x.repeat(1, 3, 1, 1))[0], full(x.repeat(1, 3, 1, 1))[0])
        torch.testing.assert_close(gray(x)[0], cut(x.repeat(1, 3, 1, 1))[0], rtol=1e-4, atol=1e-5)


def test_other_shapes_load_in_part_and_unknown_widths_are_named():
    torch.manual_seed(0)
    lowmem = MobileNetV2(0.35, out_indices=(2, ), expand_ratios=(1, 4))
    before = {k: v.clone() for k, v in lowmem.state_dict().items()}
    DistilledMobileNetV2()(lowmem)
    after = lowmem.state_dict()
    assert torch.equal(after['features.0.0.weight'].half(),
                       torch.load(distilled_weights()[0.35], weights_only=True)['state_dict']['features.0.0.weight'])
    assert torch.equal(after['features.2.conv.0.0.weight'], before['features.2.conv.0.0.weight'])  # reshaped
    with pytest.raises(ConfigError, match=r'widen_factor=0.5.*packaged: \[0.1, 0.35\].*init="scratch"'):
        DistilledMobileNetV2()(MobileNetV2(0.5, out_indices=(2, )))


def test_fomo_config_starts_from_them_unless_scratch():
    cfg = load_config('fomo/fomo_mobnetv2')
    assert cfg.init == 'imagenet' and cfg.model.backbone.init_cfg == dict(type='DistilledMobileNetV2')
    assert load_config('fomo/fomo_mobnetv2', dict(init='scratch')).model.backbone.init_cfg is None
    for name, start in (('fomo/fomo_mobnetv2_0.1', 'imagenet'), ('fomo/fomo_mobnetv2_lowmem', 'scratch'),
                        ('classification/mobilenetv2_0.35_digits', 'imagenet'),
                        ('distillation/mobilenetv2_0.1_from_1.0_digits', 'scratch')):
        cfg = load_config(name)
        assert cfg.init == start and (cfg.model.backbone.get('init_cfg') is not None) == (start == 'imagenet'), name
    unpackaged = r"widen_factor=0.5 \(--cfg-options\) with init='imagenet'.*\[0.1, 0.35, 1.0\]"
    with pytest.raises(ConfigError, match=unpackaged):
        load_config('fomo/fomo_mobnetv2', dict(widen_factor=0.5))  # at load time, before any data is read
    assert load_config('fomo/fomo_mobnetv2', dict(widen_factor=0.5, init='scratch')).model.backbone.widen_factor == 0.5
    with pytest.raises(ConfigError, match="init='pretrained'.*'imagenet'.*'scratch'"):
        load_config('fomo/fomo_mobnetv2', dict(init='pretrained'))
    from sscma.registry import MODELS
    model = MODELS.build(load_config('fomo/fomo_mobnetv2_gray').model)
    model.init_weights()
    stem = torch.load(distilled_weights()[0.35], weights_only=True)['state_dict']['features.0.0.weight']
    np.testing.assert_allclose(model.backbone.features[0][0].weight.detach().numpy(),
                               stem.float().sum(dim=1, keepdim=True).numpy(), rtol=1e-6)


@pytest.mark.parametrize('width,init', [(0.1, 'imagenet'), (0.35, 'imagenet'), (0.5, 'scratch')])
def test_the_detector_on_mobilenet_v2_starts_from_them_at_any_width(width, init):
    from sscma.registry import MODELS
    cfg = load_config('rtmdet/rtmdet_mnv2_small_data', dict(widen_factor=width, init=init, num_classes=3))
    model = MODELS.build(cfg.model)
    model.init_weights()
    stem = model.backbone.features[0][0].weight.detach()
    if init == 'imagenet':
        packaged = torch.load(distilled_weights()[width], weights_only=True)['state_dict']['features.0.0.weight']
        assert torch.equal(stem.half(), packaged)
    else:
        assert cfg.model.backbone.init_cfg is None
    with torch.no_grad():  # the neck takes the backbone's channels at every width; non-square input
        cls_scores, boxes = model.eval()(fixed_input()[..., :64, :96], mode='tensor')
    assert [tuple(s.shape) for s in cls_scores] == [(1, 3, 8, 12), (1, 3, 4, 6), (1, 3, 2, 3)]
    assert [tuple(b.shape) for b in boxes] == [(1, 4, 8, 12), (1, 4, 4, 6), (1, 4, 2, 3)]


@pytest.mark.parametrize('width', [0.35, 0.75])
def test_the_detector_reads_earlier_stages_for_small_objects(width):
    """``stages=(1, 2, 4)``: levels at strides 4/8/16; the neck's channels and the priors' strides follow."""
    from sscma.registry import MODELS
    cfg = load_config('rtmdet/rtmdet_mnv2_small_data', dict(widen_factor=width, stages=(1, 2, 4), init='scratch'))
    assert cfg.model.bbox_head.anchor_generator.strides == [4, 8, 16]
    model = MODELS.build(cfg.model).eval()
    assert cfg.model.neck.in_channels == [model.backbone.out_channels[i] for i in (1, 2, 4)]
    with torch.no_grad():
        cls_scores, _ = model(fixed_input()[..., :64, :96], mode='tensor')
    sizes = [tuple(s.shape[-2:]) for s in cls_scores]
    assert sizes == [(16, 24), (8, 12), (4, 6)]
    # each level's priors sit on the 96x64 image at its stride (one stride too large would place them outside)
    for priors, (h, w), stride in zip(model.bbox_head.prior_generator.grid_priors(sizes, device='cpu'), sizes,
                                      (4, 8, 16)):
        assert float(priors[:, 0].max()) == (w - 1) * stride and float(priors[:, 1].max()) == (h - 1) * stride
