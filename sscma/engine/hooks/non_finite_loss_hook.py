"""Stop training at the first NaN / inf loss, keeping the last good checkpoint."""
import math
import os.path as osp
from typing import Optional

from mmengine.hooks import Hook

from sscma.registry import HOOKS
from sscma.utils.errors import SSCMAError


class TrainingDiverged(SSCMAError, RuntimeError):
    """The loss stopped being a finite number."""


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Raise :class:`TrainingDiverged` when the training loss becomes NaN or infinite.

    Raised before the epoch's checkpoint is written, so the last checkpoint on disk holds good weights;
    the message names it and suggests what to change.
    """
    priority = 'VERY_HIGH'

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs: Optional[dict] = None) -> None:
        loss = (outputs or {}).get('loss')
        if loss is None:
            return
        value = float(loss.detach() if hasattr(loss, 'detach') else loss)
        if math.isfinite(value):
            return
        last_file = osp.join(runner.work_dir, 'last_checkpoint')
        last = open(last_file).read().strip() if osp.isfile(last_file) else None
        keep = f'the last good checkpoint is {last}' if last else 'no checkpoint had been saved yet'
        raise TrainingDiverged(
            f'training loss became {value} at epoch {runner.epoch + 1}, iteration {batch_idx + 1}; stopped '
            f'({keep}). Lower base_lr (e.g. --cfg-options base_lr=...) or check the data for broken labels.')
