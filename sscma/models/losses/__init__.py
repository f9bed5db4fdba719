from .distillation_kl_loss import DistillationKLLoss
from .wing_loss import WingLoss

__all__ = ['DistillationKLLoss', 'WingLoss']
