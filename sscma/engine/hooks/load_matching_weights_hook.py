"""Initialise a model from a checkpoint that only partly fits it (transfer learning), reported in one line."""
import re
from collections import OrderedDict
from typing import Dict, List, Mapping, Tuple

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from sscma.registry import HOOKS

_SHOWN = 4  # names listed per kind of mismatch before "... and N more"


def match_state_dict(model_state: Mapping[str, torch.Tensor],
                     ckpt_state: Mapping[str, torch.Tensor]) -> Tuple[OrderedDict, Dict[str, List]]:
    """Merge a checkpoint's tensors into a model's state dict wherever the shapes agree.

    Args:
        model_state (Mapping): ``model.state_dict()`` (its values are kept where the checkpoint does not fit).
        ckpt_state (Mapping): The checkpoint's state dict, ``module.`` prefixes already removed.

    Returns:
        tuple: The merged state dict (exactly the model's keys) and a report ``{'loaded': [key],
        'reshaped': [(key, ckpt_shape, model_shape)], 'missing': [key], 'unexpected': [key]}``;
        BatchNorm's ``num_batches_tracked`` counters are left out of the report.
    """
    merged = OrderedDict()
    report: Dict[str, List] = dict(loaded=[], reshaped=[], missing=[], unexpected=[])
    for key, value in model_state.items():
        counted = not key.endswith('num_batches_tracked')
        src = ckpt_state.get(key)
        if src is None:
            merged[key] = value
            if counted:
                report['missing'].append(key)
        elif tuple(src.shape) != tuple(value.shape):
            merged[key] = value
            if counted:
                report['reshaped'].append((key, tuple(src.shape), tuple(value.shape)))
        else:
            merged[key] = src
            if counted:
                report['loaded'].append(key)
    report['unexpected'] = [k for k in ckpt_state if k not in model_state and not k.endswith('num_batches_tracked')]
    return merged, report


def _names(items: List, fmt=str) -> str:
    shown = ', '.join(fmt(i) for i in items[:_SHOWN])
    return shown + (f' ... and {len(items) - _SHOWN} more' if len(items) > _SHOWN else '')


def describe_match(source: str, report: Dict[str, List]) -> str:
    """One line saying what :func:`match_state_dict` loaded, re-initialised and ignored."""
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
        revised = OrderedDict()
        for key, value in state.items():
            if not isinstance(value, torch.Tensor):
                return  # not a state dict we understand: leave it to mmengine
            for pattern, repl in self.revise_keys:
                key = re.sub(pattern, repl, key)
            revised[key] = value
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
