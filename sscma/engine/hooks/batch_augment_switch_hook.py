"""Switch some batch augmentations off for the last epochs of training (mosaic, mixup, copy-paste, as Ultralytics'
``close_mosaic`` and mmdet's ``PipelineSwitchHook`` in the RTMDet / YOLOX recipes): the model ends on images
like the ones it will see."""
from typing import Sequence

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from sscma.registry import HOOKS
from sscma.utils.errors import ConfigError


@HOOKS.register_module()
class BatchAugmentSwitchHook(Hook):
    """Set ``p = 0`` on the data preprocessor's batch augmentations named in ``augments`` for the last
    ``close_epochs`` epochs (their own ``p`` before that); decided from the epoch at every epoch's start, so a
    resumed run is switched the same way.

    Args:
        close_epochs (int): Epochs at the end without them. Defaults to 10 (Ultralytics' ``close_mosaic``).
        augments (Sequence[str]): Type names of the augmentations to switch. Defaults to mosaic, mixup and
            copy-paste.
    """

    def __init__(self, close_epochs: int = 10,
                 augments: Sequence[str] = ('BatchMosaic', 'BatchMixUp', 'BatchCopyPaste')) -> None:
        if not isinstance(close_epochs, int) or close_epochs < 0:
            raise ConfigError(f'BatchAugmentSwitchHook: close_epochs={close_epochs!r} must be an integer >= 0')
        self.close_epochs = close_epochs
        self.names = tuple(augments)
        self.own_p = {}

    def _switched(self, runner) -> list:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        steps = getattr(getattr(model, 'data_preprocessor', None), 'augments', None) or []
        return [step for step in steps if type(step).__name__ in self.names]

    def before_train(self, runner) -> None:
        switched = self._switched(runner)
        if not switched:
            raise ConfigError(f'BatchAugmentSwitchHook: the data preprocessor has none of {list(self.names)} in its '
                              'augments; leave the hook out or add them')
        self.own_p = {id(step): step.p for step in switched}

    def before_train_epoch(self, runner) -> None:
        closed = runner.epoch >= runner.max_epochs - self.close_epochs
        for step in self._switched(runner):
            was = step.p
            step.p = 0.0 if closed else self.own_p.get(id(step), step.p)
            if was and not step.p:
                runner.logger.info(f'BatchAugmentSwitchHook: {type(step).__name__} off from epoch {runner.epoch + 1} '
                                   f'(the last {runner.max_epochs - runner.epoch} of {runner.max_epochs})')
