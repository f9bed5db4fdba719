"""PFLD head: multi-scale pooled features + a fully connected layer regressing normalised keypoints."""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule
from torch import nn

from sscma.models.losses.wing_loss import WingLoss  # noqa: F401  (registers the default loss)
from sscma.models.utils.keypoint_codec import encode_keypoints
from sscma.registry import MODELS


def _pair(v) -> Tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, (int, float)) else (int(v[0]), int(v[1]))


@MODELS.register_module()
class PFLDHead(BaseModule):
    """Regress ``K`` keypoints as ``K * 2`` coordinates in ``[0, 1]`` of the network input (x by width, y by
    height), as PFLD (Guo et al., 2019) does for facial landmarks.

    Three scales are concatenated before the final linear layer: ``S1`` = global average of the backbone
    map, ``S2`` = global average after a 3x3 stride-2 conv, ``S3`` = a conv whose kernel covers the whole
    ``S2`` map (a fully connected layer that keeps *where* features are). ``S3`` needs the feature-map
    size, which :class:`KeypointRegressor` derives from its ``input_size``.

    The loss compares coordinates multiplied by ``coord_scale`` (100: percent of the input size), weighted
    by the keypoints' visibility.

    Args:
        in_channels (int): Channels of the backbone's last feature map.
        num_keypoints (int): ``K``.
        feat_size (int | tuple[int, int]): ``(h, w)`` of the backbone's last feature map.
        mid_channels (int): Channels of ``S2``. Defaults to 32.
        fc_channels (int): Channels of ``S3``. Defaults to 128.
        coord_scale (float): Scale of the coordinates seen by the loss. Defaults to 100.
        dropout (float): Dropout before the final layer while training. Defaults to 0.
        loss (dict): Regression loss taking ``(pred, target, weight)`` ``(N, K, 2)``/``(N, K)``, e.g.
            ``WingLoss`` (default) or ``mmpose.SmoothL1Loss``.
    """

    def __init__(self, in_channels: int, num_keypoints: int, feat_size, mid_channels: int = 32,
                 fc_channels: int = 128, coord_scale: float = 100.0, dropout: float = 0.0,
                 loss: Optional[dict] = None, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not isinstance(num_keypoints, int) or num_keypoints < 1:
            raise ValueError(f'num_keypoints={num_keypoints!r} must be a positive integer')
        self.num_keypoints = num_keypoints
        self.feat_size = _pair(feat_size)
        self.coord_scale = coord_scale
        s2 = tuple(math.ceil(s / 2) for s in self.feat_size)
        self.s2 = nn.Sequential(nn.Conv2d(in_channels, mid_channels, 3, 2, 1, bias=False), nn.BatchNorm2d(mid_channels),
                                nn.ReLU(inplace=True))
        # no BatchNorm on the 1x1 output (as in PFLD): a last batch of one image must still train
        self.s3 = nn.Sequential(nn.Conv2d(mid_channels, fc_channels, s2), nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(in_channels + mid_channels + fc_channels, num_keypoints * 2)
        nn.init.normal_(self.fc.weight, std=0.001)
        nn.init.constant_(self.fc.bias, 0.5)  # start at the image centre
        self.loss_fn = MODELS.build(loss or dict(type='WingLoss', omega=10.0, epsilon=2.0))

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        """Return ``(B, K * 2)`` normalised coordinates ``x0, y0, x1, y1, ...``."""
        x = feats[-1]
        if not torch.jit.is_tracing() and tuple(x.shape[-2:]) != self.feat_size:
            raise ValueError(f'PFLDHead was built for a {self.feat_size} feature map but got {tuple(x.shape[-2:])}: '
                             'the model input_size must match the images fed to it (imgsz in the config)')
        s1 = x.mean(dim=(2, 3))
        x2 = self.s2(x)
        s2 = x2.mean(dim=(2, 3))
        s3 = self.s3(x2).flatten(1)
        return self.fc(self.dropout(torch.cat([s1, s2, s3], dim=1)))

    def targets(self, data_samples: List, device) -> Tuple[torch.Tensor, torch.Tensor]:
        """Normalised ground truth ``(B, K, 2)`` and visibility weights ``(B, K)``."""
        kpts, vis = [], []
        for sample in data_samples:
            gt = sample.gt_instances
            k = torch.as_tensor(gt.keypoints, dtype=torch.float32, device=device).reshape(-1, self.num_keypoints, 2)[0]
            v = gt.get('keypoints_visible')
            v = torch.ones(self.num_keypoints, device=device) if v is None else torch.as_tensor(
                v, dtype=torch.float32, device=device).reshape(-1, self.num_keypoints)[0]
            kpts.append(encode_keypoints(k, sample.metainfo['img_shape']))
            vis.append(v)
        return torch.stack(kpts), torch.stack(vis)

    def loss(self, feats: Sequence[torch.Tensor], data_samples: List) -> Dict[str, torch.Tensor]:
        pred = self(feats).view(-1, self.num_keypoints, 2)
        target, weight = self.targets(data_samples, pred.device)
        loss = self.loss_fn(pred * self.coord_scale, target * self.coord_scale, weight)
        with torch.no_grad():
            err = ((pred - target).norm(dim=-1) * weight).sum() / weight.sum().clamp(min=1)
        return dict(loss_kpt=loss, err_pct=err * 100)
