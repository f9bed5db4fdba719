"""Validation loss beside the training loss: the curves a user reads to decide when to stop training."""
import copy
from typing import Iterator, Optional

import torch
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer
from mmengine.model import is_model_wrapper

from sscma.registry import HOOKS


@HOOKS.register_module()
class ValLossHook(Hook):
    """The model's own loss terms on the validation images, in eval mode and without training augmentation.

    They go where mmengine's ``ValLoop`` collects losses (``val_loop.val_loss``), so the validation metrics gain
    ``val_loss`` (the sum of the terms, as training sums them) and each term (``val_loss_cls``, ...): logged,
    written to ``scalars.json`` / TensorBoard and ``results.json``, drawn against the training loss by epoch in
    ``training_curves.png``, and usable by ``EarlyStoppingHook(monitor='val_loss')``.

    The loss needs the ground truth in the network input's coordinates. The model's task says which pipeline
    gives it (:meth:`sscma.tasks.Task.loss_dataset`): the validation batches themselves where the test pipeline
    already does (classification, keypoints, segmentation), a second pass over the validation split where it
    does not (detectors: annotations loaded before the resize), none where the task has no loss on them (pose,
    anomaly; said once in the log). mmengine's log processor smooths every key holding ``loss`` over its last
    values, across epochs for validation; the base config's ``log_processor.mean_pattern`` leaves ``val_*`` keys
    alone, so each epoch shows its own validation loss.
    """
    priority = 'NORMAL'

    def __init__(self) -> None:
        self.mode: Optional[str] = None  # 'batches' | 'loader' | 'off'
        self.loader = None
        self.batches: Optional[Iterator] = None

    def _model(self, runner):
        return runner.model.module if is_model_wrapper(runner.model) else runner.model

    def _setup(self, runner) -> None:
        from sscma.tasks import task_of
        model = self._model(runner)
        loader_cfg = copy.deepcopy(runner.cfg.get('val_dataloader')) or {}
        dataset = loader_cfg.get('dataset')
        wanted = task_of(model).loss_dataset(copy.deepcopy(dataset)) if isinstance(dataset, dict) else None
        if wanted is None:
            self.mode = 'off'
            runner.logger.info(f'validation loss: none for {type(model).__name__} (its task has no loss on the '
                               'validation images); the metrics alone are reported')
        elif wanted == dataset:
            self.mode = 'batches'
        else:
            loader_cfg['dataset'] = wanted
            self.loader = runner.build_dataloader(loader_cfg, seed=runner.seed)
            self.mode = 'loader'

    def _give_up(self, runner, err: Exception) -> None:
        """A model or dataset without a loss on the validation images: said once, training goes on."""
        self.mode = 'off'
        runner.logger.warning(f'validation loss not computed for {type(self._model(runner)).__name__}: '
                              f'{type(err).__name__}: {err}')

    def before_val_epoch(self, runner) -> None:
        try:
            if self.mode is None:
                self._setup(runner)
            self.batches = iter(self.loader) if self.mode == 'loader' else None
        except Exception as err:  # noqa: BLE001
            self._give_up(runner, err)
        self.sums: dict = {}

    def after_val_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        losses = getattr(runner.val_loop, 'val_loss', None)
        if self.mode in (None, 'off') or losses is None:
            return
        model = self._model(runner)
        try:
            batch = next(self.batches, None) if self.mode == 'loader' else data_batch
            if batch is not None:
                with torch.no_grad():
                    terms = model(**model.data_preprocessor(batch, False), mode='loss')
                for name, value in terms.items():
                    if 'loss' in name:
                        values = value if isinstance(value, (list, tuple)) else [value]
                        total, count = self.sums.get(f'val_{name}', (0.0, 0))
                        self.sums[f'val_{name}'] = (total + float(sum(v.mean() for v in values)), count + 1)
        except Exception as err:  # noqa: BLE001
            self._give_up(runner, err)
            return
        if batch_idx == len(runner.val_dataloader) - 1:
            for name, mean in self._means().items():
                losses[name] = HistoryBuffer()
                losses[name].update(mean)

    def _means(self) -> dict:
        """Each term's mean over the batches of every process (all-reduced under DDP, so every rank reports,
        and early-stops on, the same number)."""
        from mmengine.dist import all_reduce, get_world_size
        names = sorted(self.sums)
        sums = torch.tensor([[self.sums[n][0], self.sums[n][1]] for n in names], dtype=torch.float64).reshape(-1, 2)
        if get_world_size() > 1:
            all_reduce(sums, op='sum')
        return {n: float(s / max(c, 1)) for n, (s, c) in zip(names, sums.tolist())}
