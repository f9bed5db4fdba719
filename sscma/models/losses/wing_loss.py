"""Wing loss (Feng et al., CVPR 2018) for coordinate regression, with per-keypoint weights."""
import math
from typing import Optional

import torch
from torch import nn

from sscma.registry import MODELS


@MODELS.register_module()
class WingLoss(nn.Module):
    """``w * ln(1 + |d| / eps)`` for ``|d| < w``, else ``|d| - C``: large gradients for small errors.

    Args:
        omega (float): Width of the logarithmic part, in the units of the inputs. Defaults to 10.
        epsilon (float): Curvature of the logarithmic part. Defaults to 2.
        loss_weight (float): Multiplier of the loss. Defaults to 1.
    """

    def __init__(self, omega: float = 10.0, epsilon: float = 2.0, loss_weight: float = 1.0) -> None:
        super().__init__()
        if omega <= 0 or epsilon <= 0:
            raise ValueError(f'WingLoss: omega={omega} and epsilon={epsilon} must be positive')
        self.omega = omega
        self.epsilon = epsilon
        self.loss_weight = loss_weight
        self.C = omega - omega * math.log(1.0 + omega / epsilon)

    def forward(self, pred: torch.Tensor, target: torch.Tensor, weight: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``pred``/``target`` ``(N, K, D)``, ``weight`` ``(N, K)``; sum over K and D, mean over N."""
        delta = (pred - target).abs()
        loss = torch.where(delta < self.omega, self.omega * torch.log1p(delta / self.epsilon), delta - self.C)
        if weight is not None:
            loss = loss * weight[..., None]
        return self.loss_weight * loss.sum(dim=(1, 2)).mean()
