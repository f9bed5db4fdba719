"""The config file of a pruned model: the original as ``_base_``, the overrides, the pruned widths (data, not a
pickled module; see :mod:`sscma.apis.prune`)."""
import os
import os.path as osp
from typing import Any, Dict, List, Optional

from sscma.utils import ConfigError, top_level_variables

VARIABLE_ALIASES = {'epochs': 'max_epochs', 'max_epochs': 'epochs', 'lr': 'base_lr', 'base_lr': 'lr'}


def _variable_name(name: str, chain_variables: Dict[str, Any]) -> str:
    """``name`` as the config chain spells it (``epochs`` or ``max_epochs``, ``lr`` or ``base_lr``)."""
    alias = VARIABLE_ALIASES.get(name)
    return alias if name not in chain_variables and alias in chain_variables else name


def _nested(options: Dict[str, Any]) -> Dict[str, Any]:
    """``{'a.b.c': v}`` -> ``{'a': {'b': {'c': v}}}`` (what a child config merges into its base)."""
    out: Dict[str, Any] = {}
    for key, value in options.items():
        parts = key.split('.')
        if any(p.isdigit() for p in parts):
            raise ConfigError(f'--cfg-options {key}: list items cannot be carried into the pruned config; set the '
                              'whole list, or edit the config')
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def _py(value: Any) -> str:
    """Python source of ``value`` with dicts as ``dict(key=...)`` calls.

    A literal ``{...}`` at the top level of a config would count as a top-level *variable* for
    :func:`~sscma.utils.load_config` and replace the base's whole ``model`` instead of merging into it.
    """
    if isinstance(value, dict) and all(isinstance(k, str) and k.isidentifier() for k in value):
        return 'dict(' + ', '.join(f'{k}={_py(v)}' for k, v in value.items()) + ')'
    return repr(value)


def _merge(a: Dict[str, Any], b: Dict[str, Any]) -> Dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def write_pruned_config(path: str, config: str, cfg_options: Dict[str, Any], channels: List,
                        head_in_channels: Optional[int], epochs: Optional[int], note: str) -> str:
    """Write the config of the pruned model: ``_base_`` = ``config``, the overrides, the pruned widths.

    Top-level ``cfg_options`` become top-level variables (they propagate through the inherited chain as with
    ``--cfg-options``); dotted ones become nested dicts; ``epochs`` (the fine-tuning length) is written under
    the name the chain uses, so ``tools/train.py <this> --resume`` continues the same schedule.
    """
    chain = top_level_variables(config)
    variables = {}
    dotted = {}
    for key, value in cfg_options.items():
        if '.' in key:
            dotted[key] = value
        else:
            variables[_variable_name(key, chain)] = value
    if epochs:
        variables[_variable_name('epochs', chain)] = epochs
    model = dict(backbone=dict(channels=channels, init_cfg=None))  # the weights come from the pruned checkpoint
    if head_in_channels is not None:
        model['head'] = dict(in_channels=head_in_channels)
    fields = _merge(_nested(dotted), dict(model=model))
    base = osp.relpath(osp.abspath(config), osp.dirname(osp.abspath(path)))
    lines = [f'# Written by tools/prune.py: {note}',
             '# The pruned widths are model.backbone.channels (weights: the pruned checkpoint, no pretrained init);',
             '# everything else comes from the base config.',
             f'_base_ = [{base!r}]', '']
    lines += [f'{k} = {v!r}' for k, v in variables.items()]
    lines += [f'{k} = {_py(v)}' for k, v in fields.items()]
    text = '\n'.join(lines) + '\n'
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path + '.tmp', 'w', encoding='utf-8') as f:
        f.write(text)
    os.replace(path + '.tmp', path)
    return path


def config_with_options(config: str, options: Dict[str, Any], work_dir: str) -> str:
    """``config`` itself, or (with overrides) a child config in ``work_dir`` that applies them, for testing."""
    if not options:
        return config
    path = osp.join(work_dir, 'test_float', f'{osp.splitext(osp.basename(config))[0]}_float.py')
    os.makedirs(osp.dirname(path), exist_ok=True)
    chain = top_level_variables(config)
    variables = {_variable_name(k, chain): v for k, v in options.items() if '.' not in k}
    fields = _nested({k: v for k, v in options.items() if '.' in k})
    base = osp.relpath(osp.abspath(config), osp.dirname(path))
    text = '\n'.join([f'# {config} with the --cfg-options of tools/prune.py (the float model, for testing)',
                      f'_base_ = [{base!r}]'] + [f'{k} = {v!r}' for k, v in variables.items()]
                     + [f'{k} = {_py(v)}' for k, v in fields.items()]) + '\n'
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text)
    return path
