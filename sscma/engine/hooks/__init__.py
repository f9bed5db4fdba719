from .prediction_vis_hook import PredictionVisHook
from .run_summary_hook import RunSummaryHook

__all__ = ['PredictionVisHook', 'RunSummaryHook']
