"""Initialise a model from a checkpoint that only partly fits it (transfer learning), reported in one line."""
from collections import OrderedDict
from typing import Dict, List, Mapping, Tuple

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from sscma.registry import HOOKS
from sscma.utils.checkpoint import CheckpointError, few, match_state_dict, state_dict_of

_SHOWN = 4  # names listed per kind of mismatch before "... and N more"


def _names(items: List, fmt=str) -> str:
    return few(items, _SHOWN, fmt, more=' ... and {n} more')


def describe_match(source: str, report: Dict[str, List]) -> str:
    """One line saying what :func:`~sscma.utils.checkpoint.match_state_dict` loaded, re-initialised and ignored."""
    total = len(report['loaded']) + len(report['reshaped']) + len(report['missing'])
    parts = [f'{source}: loaded {len(report["loaded"])}/{total} tensors of the model']
    if report['reshaped']:
        parts.append(f're-initialised {len(report["reshaped"])} whose shape differs (e.g. another num_classes): '
                     + _names(report['reshaped'], lambda r: f'{r[0]} {list(r[1])}->{list(r[2])}'))
    if report['missing']:
        parts.append(f'initialised {len(report["missing"])} absent from the checkpoint: {_names(report["missing"])}')
    if report['unexpected']:
        parts.append(f'ignored {len(report["unexpected"])} the model does not have: {_names(report["unexpected"])}')
    if not report['loaded']:
        parts.append('nothing fits: is it a checkpoint of this model?')
    return '; '.join(parts)


@HOOKS.register_module()
class LoadMatchingWeightsHook(Hook):
    """Let ``load_from`` initialise a model from a checkpoint that fits only in part, with a one-line report.

    mmengine loads ``load_from`` non-strictly but prints a multi-line warning listing every size mismatch,
    missing and unexpected key. This hook runs just before the weights are copied (``after_load_checkpoint``)
    and rewrites the checkpoint's state dict to exactly the model's keys: the checkpoint's tensor where the
    shapes agree, the model's freshly initialised one where they differ (a head for another ``num_classes``) or
    the checkpoint lacks it. What was loaded, re-initialised and ignored is logged in one line. A checkpoint that
    fits exactly (``--resume``) is left untouched and nothing is logged.

    Args:
        revise_keys (list): ``(pattern, replacement)`` applied to the checkpoint's keys first, like mmengine's
            ``Runner.load_checkpoint``. Defaults to removing a ``module.`` prefix.
    """
    priority = 'VERY_HIGH'

    def __init__(self, revise_keys: List[Tuple[str, str]] = ((r'^module\.', ''), )) -> None:
        self.revise_keys = [tuple(r) for r in revise_keys]

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        nested = isinstance(checkpoint.get('state_dict'), Mapping)
        state = checkpoint['state_dict'] if nested else checkpoint
        if not all(isinstance(v, torch.Tensor) for v in state.values()):
            return  # not a state dict we understand: leave it to mmengine
        try:
            revised = state_dict_of(state, self.revise_keys)
        except CheckpointError:
            return
        merged, report = match_state_dict(model.state_dict(), revised)
        if not (report['reshaped'] or report['missing'] or report['unexpected']):
            return
        merged._metadata = getattr(state, '_metadata', OrderedDict())
        if nested:
            checkpoint['state_dict'] = merged
        else:
            checkpoint.clear()
            checkpoint.update(merged)
        runner.logger.warning(describe_match(f'load_from {getattr(runner, "_load_from", None)}', report))
