import torch
from torch import nn

from sscma.models.utils.feature_info import FeatureInfo
from sscma.registry import DATASETS, METRICS, MODELS, TRANSFORMS
from sscma.utils.cli import explain_unregistered


@MODELS.register_module()
class TinyTestBackbone(nn.Module):
    """A backbone registered only here: configs must be able to use it without editing sscma."""

    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3, stride=8, padding=1)
        self.feature_info = [FeatureInfo(channels, 8)]

    def forward(self, x):
        return (self.conv(x), )


def test_new_backbone_used_from_config():
    model = MODELS.build(dict(type='Fomo', backbone=dict(type='TinyTestBackbone', channels=5),
                              head=dict(type='FomoHead', num_classes=3),
                              data_preprocessor=dict(type='mmdet.DetDataPreprocessor')))
    assert isinstance(model.backbone, TinyTestBackbone)
    assert model.head.conv[0].in_channels == 5  # derived from the backbone
    out = model(torch.zeros(2, 3, 64, 64), mode='tensor')
    assert out.shape == (2, 4, 8, 8)


def test_other_scopes_reachable():
    assert MODELS.get('mmpretrain.ImageClassifier') is not None
    assert MODELS.get('mmdet.DetDataPreprocessor') is not None
    assert TRANSFORMS.get('mmdet.Resize') is not None
    assert TRANSFORMS.get('mmpose.PackPoseInputs') is not None
    assert METRICS.get('mmdet.CocoMetric') is not None
    assert DATASETS.get('ImageFolderDataset') is not None and DATASETS.get('DetectionDataset') is not None


def test_unknown_type_message_suggests_close_match():
    msg = explain_unregistered('FomoHed is not in the sscma::model registry. Please check whether ...')
    assert "unknown type 'FomoHed'" in msg
    assert "'FomoHead'" in msg
