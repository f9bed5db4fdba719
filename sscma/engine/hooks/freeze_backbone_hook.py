"""Transfer learning: train the new head with the backbone frozen, then fine-tune everything."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from sscma.registry import HOOKS


@HOOKS.register_module()
class FreezeBackboneHook(Hook):
    """Freeze ``model.backbone`` (weights and BatchNorm statistics) for the first ``freeze_epochs`` epochs.

    Combine with ``optim_wrapper.paramwise_cfg = dict(custom_keys={'backbone': dict(lr_mult=0.1)})`` for a
    smaller learning rate once the backbone is unfrozen.

    Args:
        freeze_epochs (int): Epochs with the backbone frozen. Defaults to 5.
    """

    def __init__(self, freeze_epochs: int = 5) -> None:
        if freeze_epochs < 0:
            raise ValueError(f'freeze_epochs={freeze_epochs} must be >= 0')
        self.freeze_epochs = freeze_epochs

    def _backbone(self, runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        return model.backbone

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        # at the first iteration of an epoch: the loop has just called model.train()
        if batch_idx != 0:
            return
        frozen = runner.epoch < self.freeze_epochs
        backbone = self._backbone(runner)
        for p in backbone.parameters():
            p.requires_grad_(not frozen)
        if frozen:
            backbone.eval()  # keep the pretrained BatchNorm statistics
        elif runner.epoch == self.freeze_epochs and self.freeze_epochs:
            runner.logger.info(f'FreezeBackboneHook: backbone unfrozen at epoch {runner.epoch + 1}')
