"""Pick the anomaly threshold on the validation images and store it in the model before it is saved."""
import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from sscma.registry import HOOKS


@HOOKS.register_module()
class AnomalyThresholdHook(Hook):
    """After each training epoch (the fitting pass), score the validation images, pick the threshold with
    :func:`~sscma.evaluation.calibrate_threshold` and multiply the model's ``threshold`` by it. It runs before the
    checkpoint hook (priority ``NORMAL`` < ``VERY_LOW``) and before validation, so every saved checkpoint carries
    the threshold and the validation's F1 is measured at it (on the images that picked it: test F1 is the
    unbiased one).

    Args:
        target_fpr (float): The false-positive rate aimed at when the validation images are all normal.
    """
    priority = 'NORMAL'

    def __init__(self, target_fpr: float = 0.05) -> None:
        self.target_fpr = float(target_fpr)

    def after_train_epoch(self, runner) -> None:
        from sscma.evaluation.metrics.anomaly_metric import calibrate_threshold
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        loader = runner.val_dataloader if runner.val_loop is not None else None
        if loader is None:
            runner.logger.warning('anomaly threshold: no val_dataloader to pick it on; the stored one (1.0) is kept')
            return
        labels, scores = [], []
        model.eval()
        with torch.no_grad():
            for data in loader:
                for sample in model.val_step(data):
                    labels.append(int(sample.gt_label.reshape(-1)[0]))
                    scores.append(float(sample.anomaly_score))
        model.train()
        scale, how = calibrate_threshold(labels, scores, self.target_fpr)
        if not scale > 0:
            runner.logger.warning(f'anomaly threshold: calibration gave {scale}; the stored threshold is kept')
            return
        model.threshold.mul_(scale)
        runner.logger.info(f'anomaly threshold: {float(model.threshold):.5g} (mean squared whitened distance of a '
                           f'cell; {how} on {len(scores)} validation images)')
