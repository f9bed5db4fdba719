"""Pick FOMO's decoding threshold for the best checkpoint on the validation images, after training."""
import copy
from typing import Optional, Sequence

import numpy as np
import torch
from mmengine.dist import all_gather_object, barrier, is_main_process
from mmengine.hooks import CheckpointHook, Hook
from mmengine.model import is_model_wrapper

from sscma.registry import HOOKS

OPTION = 'model.head.score_thr'


@HOOKS.register_module()
class FomoThresholdHook(Hook):
    """When training ends, decode the validation images once with the best checkpoint's weights, take the one
    of ``thresholds`` and the config's ``score_thr`` whose micro F1 is highest
    (:func:`~sscma.evaluation.metrics.f1_by_threshold`; of equal F1s, the nearest to the config's) and write it
    into that checkpoint's options, so that ``sscma test`` / ``export`` / ``predict`` of it decode with it. Which
    checkpoint is best is decided at the config's threshold, as without the hook; the validation F1 at the picked
    threshold is measured on the images that picked it (the test split judges it). A ``model.head.score_thr`` in
    the run's options (given by the user, or stored in a checkpoint started from without its config) is kept.

    Args:
        thresholds (Sequence[float]): The candidates besides the config's. Defaults to 0.30, 0.35, ..., 0.95.
    """
    priority = 'LOW'  # after CheckpointHook (its best checkpoint is written), before RunSummaryHook

    def __init__(self, thresholds: Optional[Sequence[float]] = None) -> None:
        self.thresholds = sorted(float(t) for t in (np.arange(30, 96, 5) / 100 if thresholds is None else thresholds))
        if not self.thresholds or not all(0.0 <= t < 1.0 for t in self.thresholds):
            raise ValueError(f'FomoThresholdHook thresholds={thresholds!r}: expected probabilities in [0, 1)')

    def after_train(self, runner) -> None:
        from sscma.utils.checkpoint import read_checkpoint
        best = next((getattr(h, 'best_ckpt_path', None) for h in runner.hooks if isinstance(h, CheckpointHook)), None)
        if not best or runner.val_loop is None:
            runner.logger.warning('FOMO score_thr: no best checkpoint (save_best) or validation split; the config\'s '
                                  'threshold stays')
            return
        checkpoint = read_checkpoint(best)
        options = (checkpoint.get('meta') or {}).get('config_source', {}).get('options')
        if options is None or OPTION in options:
            runner.logger.info(f'FOMO score_thr {options[OPTION]} as given' if options else
                               f'FOMO score_thr: {best} carries no config source; the config\'s stays')
            return
        model = copy.deepcopy(runner.model.module if is_model_wrapper(runner.model) else runner.model)
        model.load_state_dict(checkpoint['state_dict'])
        configured = float(model.head.score_thr)
        picked, f1, at_config, images = self.pick(model, runner.val_dataloader, configured)
        if is_main_process():
            options[OPTION] = picked
            torch.save(checkpoint, best)
        barrier()
        runner.logger.info(f'FOMO score_thr {picked:g} for {best}: validation F1 {f1:.4f} there, {at_config:.4f} at '
                           f'the config\'s {configured:g} (picked on the {images} validation images; the test split '
                           'judges it)')

    @torch.no_grad()
    def pick(self, model, loader, configured: float):
        """``(threshold, its F1, F1 at configured, images)`` of ``model`` on ``loader`` (all ranks together); the
        candidates are ``thresholds`` and ``configured``."""
        from sscma.evaluation.metrics import f1_by_threshold, sample_matches
        candidates = sorted(set(self.thresholds) | {configured})
        model.head.score_thr = candidates[0]  # decoded once, at the lowest: every candidate's predictions
        model.eval()
        matches = [sample_matches(s.to_dict()) for data in loader for s in model.val_step(data)]
        matches = [m for part in all_gather_object(matches) for m in part]  # every rank picks the same
        names = list(loader.dataset.metainfo.get('classes') or [])
        unlabelled = set(loader.dataset.metainfo.get('unlabelled_classes') or ())
        judged = [i for i, n in enumerate(names) if n not in unlabelled] if unlabelled else None
        f1 = f1_by_threshold(matches, candidates, judged)
        best = max(range(len(candidates)), key=lambda i: (round(float(f1[i]), 9), -abs(candidates[i] - configured)))
        return (round(candidates[best], 4), float(f1[best]), float(f1[candidates.index(configured)]), len(matches))
