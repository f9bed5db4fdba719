from .batch_augment_switch_hook import BatchAugmentSwitchHook
from .config_source_hook import ConfigSourceHook
from .cpu_threads_hook import CpuThreadsHook
from .freeze_backbone_hook import FreezeBackboneHook
from .heap_reuse_hook import HeapReuseHook, reuse_freed_heap
from .load_matching_weights_hook import LoadMatchingWeightsHook, describe_match, match_state_dict
from .non_finite_loss_hook import NonFiniteLossHook, TrainingDiverged
from .prediction_vis_hook import PredictionVisHook
from .qat_hook import QuantizationAwareTrainingHook
from .run_summary_hook import RunSummaryHook
from .val_loss_hook import ValLossHook

__all__ = ['FreezeBackboneHook', 'NonFiniteLossHook', 'TrainingDiverged', 'PredictionVisHook', 'RunSummaryHook']
__all__ += ['ConfigSourceHook', 'CpuThreadsHook', 'HeapReuseHook', 'reuse_freed_heap']
__all__ += ['LoadMatchingWeightsHook', 'describe_match', 'match_state_dict']
__all__ += ['QuantizationAwareTrainingHook', 'ValLossHook', 'BatchAugmentSwitchHook']
from .anomaly_threshold_hook import AnomalyThresholdHook

__all__ += ['AnomalyThresholdHook']
from .fomo_threshold_hook import FomoThresholdHook

__all__ += ['FomoThresholdHook']
