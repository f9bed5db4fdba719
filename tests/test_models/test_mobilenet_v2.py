"""MobileNetV2's ``expand_ratios``: the expanded widths follow it, feature shapes and skips do not change."""
import pytest
import torch

from sscma.models.backbones.mobilenet_v2 import MobileNetV2


def _hidden_widths(model: MobileNetV2) -> list:
    return [block.conv[-3][0].out_channels for block in model.features[1:]]  # the depthwise conv's width


def test_expand_ratios_change_only_the_hidden_widths():
    paper = MobileNetV2(widen_factor=0.35, out_indices=(2, ))
    low = MobileNetV2(widen_factor=0.35, out_indices=(2, ), expand_ratios=(1, 4))
    assert _hidden_widths(paper) == [16, 48, 48, 48, 96, 96]
    assert _hidden_widths(low) == [16, 32, 32, 48, 96, 96]  # stage 1 at 4x; stage 2 keeps 6x
    assert [b.use_res_connect for b in low.features[1:]] == [b.use_res_connect for b in paper.features[1:]]
    x = torch.rand(2, 3, 120, 88)  # not square, not the training size
    assert [f.shape for f in low(x)] == [f.shape for f in paper(x)] == [torch.Size([2, 16, 15, 11])]
    assert low.channels == MobileNetV2.nominal_channels(0.35, (2, ), (1, 4))
    assert sum(p.numel() for p in low.parameters()) < sum(p.numel() for p in paper.parameters())


def test_expand_ratios_with_explicit_channels_and_bad_values():
    # a stage made expansion-free takes the "hidden == input width" rule of the first block
    MobileNetV2(widen_factor=0.35, out_indices=(1, ), expand_ratios=(1, 1))
    with pytest.raises(ValueError, match='hidden width must equal its input'):
        MobileNetV2(widen_factor=0.35, out_indices=(1, ), expand_ratios=(1, 1),
                    channels=[16, [16, 8], [24, 8], [8, 8]])
    for bad in ((1, 0), (1, 2.5), (1, ) * 8):
        with pytest.raises(ValueError, match='expand_ratios'):
            MobileNetV2(widen_factor=0.35, out_indices=(2, ), expand_ratios=bad)
