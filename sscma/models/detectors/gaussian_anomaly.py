"""Anomaly detection from normal images only: a Gaussian model of frozen backbone features per cell.

In the spirit of PaDiM (Defard et al., 2020) and Edge Impulse's FOMO-AD: features of an ImageNet backbone at
stride 8 are fitted, never trained; an image's anomaly map is each cell's distance to what normal images show
there. The distance is shaped so that the whole model is one graph of operations TFLite Micro and vela run
(1x1 convolutions, subtraction, multiplication, clip):

    z = W x                                      shared whitening: W = (pooled within-cell covariance)^(-1/2)
    map[c] = mean_k ((z_k - m[c, k]) * s[c, k])^2 / threshold

``m[c]`` and ``s[c] = 1 / sqrt(var[c])`` are each cell's mean and spread in the whitened space (``per_cell``),
or one mean and spread for every cell (``per_cell=False``: textures, or parts that are not aligned). It is a
Gaussian per cell whose covariance is the pooled one rescaled per axis: PaDiM's per-cell covariance needs
``cells x D x D`` numbers (2.4 M floats at 16x16 cells, 96 channels), this ``D x D + 2 x cells x D``.
The map is divided by the stored threshold, so 1.0 is the decision boundary in every file the model is exported
to; the image score is the map's maximum.
"""
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel

from sscma.models.utils.feature_info import backbone_feature_info
from sscma.registry import MODELS


@MODELS.register_module()
class GaussianAnomalyDetector(BaseModel):
    """Frozen backbone + per-cell Gaussian anomaly map, fitted by one pass over normal training images.

    Training (``train_step``) only accumulates feature sums (float64); the statistics are computed from them
    when first needed (prediction, export, ``state_dict``). The checkpoint holds the backbone and the fitted
    buffers; :class:`~sscma.engine.hooks.AnomalyThresholdHook` stores the threshold the validation picks.

    Args:
        backbone (dict): e.g. ``dict(type='MobileNetV2', widen_factor=1.0, out_indices=(2, 4),
            init_cfg=dict(type='TorchvisionMobileNetV2'))``. Coarser maps are upsampled (nearest) to the finest
            one's stride and concatenated.
        input_size (int | tuple[int, int]): Network input ``(width, height)``, multiples of the finest stride.
        per_cell (bool): A mean and spread per cell (aligned parts) or one for all cells (textures).
        smooth (int): Side of the average pooling over neighbouring cells before the model (1: none).
        eps (float): Covariance regularisation, relative to its mean eigenvalue (PaDiM adds 0.01 I).
        clip (float, optional): Limit of each whitened, standardised feature difference before it is squared: keeps
            the int8 range of the squares small enough to resolve normal cells (None: no limit).
        data_preprocessor (dict, optional): Normalisation the backbone's weights expect.
    """

    def __init__(self, backbone: dict, input_size: Union[int, Sequence[int]] = (128, 128), per_cell: bool = True,
                 smooth: int = 3, eps: float = 0.01, clip: Optional[float] = None,
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.backbone.requires_grad_(False)
        info = backbone_feature_info(self.backbone, 'the anomaly map')
        self.stride = min(i.stride for i in info)
        self.channels = sum(i.channels for i in info)
        self.upsample = [i.stride // self.stride for i in info]  # nearest-neighbour factor of each map
        w, h = (int(input_size), ) * 2 if isinstance(input_size, (int, float)) else map(int, input_size)
        if w % self.stride or h % self.stride:
            raise ValueError(f'input_size={(w, h)}: width and height must be multiples of the feature stride '
                             f'{self.stride}')
        self.input_size = (w, h)
        self.cells = (h // self.stride, w // self.stride)
        self.per_cell = bool(per_cell)
        self.smooth = int(smooth)
        self.eps = float(eps)
        self.clip = float(clip) if clip else None
        d = self.channels
        self.register_buffer('whiten', torch.eye(d))
        # 4-D (1, D, h, w), which onnx2tf moves to NHWC with the activations (a 3-D constant is left as it is)
        self.register_buffer('cell_mean', torch.zeros(1, d, *self.cells))
        self.register_buffer('cell_scale', torch.ones(1, d, *self.cells))
        self.register_buffer('threshold', torch.tensor(1.0))
        self.register_buffer('fitted_images', torch.tensor(0, dtype=torch.long))
        groups = self.cells[0] * self.cells[1] if per_cell else 1
        self.register_buffer('_sum', torch.zeros(groups, d, dtype=torch.float64), persistent=False)
        self.register_buffer('_outer', torch.zeros(groups, d, d, dtype=torch.float64), persistent=False)
        self.register_buffer('_count', torch.tensor(0, dtype=torch.long), persistent=False)
        # the channel mean as a 1x1 convolution (weights 1/D, exact in int8): vela runs MEAN on the CPU
        self.register_buffer('_channel_mean', torch.full((1, d, 1, 1), 1.0 / d), persistent=False)

    # ------------------------------------------------------------------------------------------ features
    def train(self, mode: bool = True) -> 'GaussianAnomalyDetector':
        """The backbone stays in eval mode (frozen BatchNorm statistics) while the model fits."""
        super().train(mode)
        self.backbone.eval()
        return self

    def extract_feat(self, inputs: torch.Tensor) -> torch.Tensor:
        """``(B, D, H / stride, W / stride)``: the backbone's maps at the finest stride, concatenated."""
        feats = [f if k == 1 else F.interpolate(f, scale_factor=float(k), mode='nearest')
                 for f, k in zip(self.backbone(inputs), self.upsample)]
        h, w = self.cells  # a side that is not a multiple of a coarser stride gives that map one cell more
        feats = [f if tuple(f.shape[-2:]) == (h, w) else f[..., :h, :w] for f in feats]
        x = torch.cat(feats, 1) if len(feats) > 1 else feats[0]
        if self.smooth > 1:
            x = F.avg_pool2d(x, self.smooth, stride=1, padding=self.smooth // 2, count_include_pad=False)
        return x

    # ------------------------------------------------------------------------------------------ fitting
    def train_step(self, data: Union[dict, tuple, list], optim_wrapper=None) -> Dict[str, torch.Tensor]:
        """Accumulate one batch of normal images' features; nothing is optimised."""
        data = self.data_preprocessor(data, True)
        with torch.no_grad():
            self.accumulate(self.extract_feat(data['inputs']))
        return dict(loss=torch.zeros((), device=self._sum.device), images=self._count.float())

    @torch.no_grad()
    def accumulate(self, feats: torch.Tensor) -> None:
        """Add ``feats`` ``(B, D, h, w)`` to the sums the statistics are computed from."""
        if tuple(feats.shape[-2:]) != self.cells:
            raise ValueError(f'features of {tuple(feats.shape[-2:])} cells, expected {self.cells}: the images are '
                             f'not the model\'s input_size {self.input_size}')
        x = feats.detach().double().flatten(2).permute(2, 0, 1)  # (cells, B, D)
        if not self.per_cell:
            x = x.reshape(1, -1, x.shape[-1])
        self._sum += x.sum(1)
        self._outer += torch.einsum('gnd,gne->gde', x, x)
        self._count += feats.shape[0]

    @torch.no_grad()
    def finalize(self) -> None:
        """Compute the whitening, the cell means and spreads from the sums (nothing to do when up to date)."""
        images = int(self._count)
        if not images:
            return
        n = images * (1 if self.per_cell else self.cells[0] * self.cells[1])
        mean = self._sum / n  # (G, D)
        cov = self._outer / n - torch.einsum('gd,ge->gde', mean, mean)
        pooled = cov.mean(0)
        d = pooled.shape[0]
        pooled = pooled + self.eps * pooled.diagonal().mean().clamp_min(1e-12) * torch.eye(d, dtype=pooled.dtype,
                                                                                            device=pooled.device)
        evals, evecs = torch.linalg.eigh(pooled)
        whiten = evecs @ torch.diag(evals.clamp_min(1e-12).rsqrt()) @ evecs.T
        z_mean = mean @ whiten.T  # (G, D)
        z_var = torch.einsum('kd,gde,ke->gk', whiten, cov, whiten) + self.eps
        shape = (1, d, *self.cells)
        self.whiten.copy_(whiten.float())
        self.cell_mean.copy_(z_mean.T.reshape(d, -1).expand(d, self.cells[0] * self.cells[1]).reshape(shape).float())
        self.cell_scale.copy_(z_var.rsqrt().T.reshape(d, -1).expand(d, self.cells[0] * self.cells[1])
                              .reshape(shape).float())
        self.fitted_images.fill_(images)
        self._sum.zero_()
        self._outer.zero_()
        self._count.zero_()

    def state_dict(self, *args, **kwargs):
        self.finalize()  # a checkpoint holds the statistics, never half-accumulated sums
        return super().state_dict(*args, **kwargs)

    # ------------------------------------------------------------------------------------------ scoring
    def anomaly_map(self, feats: torch.Tensor) -> torch.Tensor:
        """``(B, 1, h, w)`` per-cell distances divided by the threshold (1.0: the decision boundary)."""
        z = F.conv2d(feats, self.whiten[:, :, None, None])
        e = (z - self.cell_mean) * self.cell_scale
        if self.clip:
            e = e.clamp(-self.clip, self.clip)
        return F.conv2d(e * e, self._channel_mean) / self.threshold

    def forward(self, inputs: torch.Tensor, data_samples: Optional[List] = None, mode: str = 'tensor'):
        if mode == 'loss':
            raise RuntimeError(f'{type(self).__name__} is fitted, not trained by a loss: train it with '
                               'tools/train.py (train_step accumulates its statistics)')
        self.finalize()
        amap = self.anomaly_map(self.extract_feat(inputs))
        if mode == 'predict':
            return self.add_predictions(amap, data_samples)
        return amap

    @staticmethod
    def add_predictions(amap: torch.Tensor, data_samples: List) -> List:
        """Set ``anomaly_map`` ``(h, w)`` and ``anomaly_score`` (the map's maximum; anomalous when >= 1.0) on each
        data sample."""
        amap = amap.float().reshape(amap.shape[0], *amap.shape[-2:])
        for sample, m in zip(data_samples, amap):
            sample.set_field(m.detach().cpu(), 'anomaly_map')
            sample.set_field(float(m.max()), 'anomaly_score')
        return data_samples

