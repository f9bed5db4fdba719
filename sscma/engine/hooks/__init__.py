from .freeze_backbone_hook import FreezeBackboneHook
from .non_finite_loss_hook import NonFiniteLossHook, TrainingDiverged
from .prediction_vis_hook import PredictionVisHook
from .run_summary_hook import RunSummaryHook

__all__ = ['FreezeBackboneHook', 'NonFiniteLossHook', 'TrainingDiverged', 'PredictionVisHook', 'RunSummaryHook']
