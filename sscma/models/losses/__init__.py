from .wing_loss import WingLoss

__all__ = ['WingLoss']
