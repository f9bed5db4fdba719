"""Quantisation-aware training: fine-tune a float model with int8 rounding simulated in every layer."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from sscma.models.utils.fake_quant import convert_to_fake_quant
from sscma.registry import HOOKS


@HOOKS.register_module()
class QuantizationAwareTrainingHook(Hook):
    """Convert the model's Conv2d / Linear layers to fake-quantised ones before training starts.

    Use it to fine-tune a trained float checkpoint (``tools/train.py CONFIG --qat --load-from FLOAT.pth``).
    Checkpoints keep the float model's keys, so ``tools/export.py`` exports them like any other and its int8
    targets calibrate on weights that already learned to live with int8 rounding.
    See :mod:`sscma.models.utils.fake_quant`.

    Args:
        momentum (float): Weight of a new batch in the moving average of each activation range.
            Defaults to 0.01.
    """

    priority = 'VERY_HIGH'  # before anything else sees the model in before_train

    def __init__(self, momentum: float = 0.01) -> None:
        if not 0 < momentum <= 1:
            raise ValueError(f'momentum={momentum} must be in (0, 1]')
        self.momentum = momentum

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        converted = convert_to_fake_quant(model, self.momentum)
        runner.logger.info(f'QuantizationAwareTrainingHook: {len(converted)} Conv2d/Linear layers train with '
                           'int8 weights (per channel) and int8 inputs (per tensor)')
