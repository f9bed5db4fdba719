"""A model from a checkpoint, and its measures: the one place that builds a model from a config and a
checkpoint (exact fit checked), counts its parameters and MACs, builds a config's dataloader in this process and
runs a config's evaluator. Export, pruning, inference and the export evaluation use it; latency is timed by
:func:`~sscma.deploy.targets.base.time_runs` for PyTorch and exported files alike.
"""
import copy
from typing import Any, Dict

import torch
from torch import nn

from sscma.utils import ConfigError, ExportError
from sscma.utils.checkpoint import check_checkpoint_fits


def build_model(cfg, checkpoint: str, config: str) -> nn.Module:
    """Build ``cfg.model``, check that ``checkpoint`` fits it exactly, load it and switch to eval mode."""
    from mmengine.runner.checkpoint import load_checkpoint

    from sscma.registry import MODELS
    model = MODELS.build(cfg.model)
    check_checkpoint_fits(model, checkpoint, config, error=ExportError)
    load_checkpoint(model, checkpoint, map_location='cpu', strict=True, logger='silent')
    return model.eval()


def count_params(model: nn.Module) -> int:
    """Parameters that the model saves (a distillation teacher, kept out of checkpoints, does not count)."""
    saved = set(model.state_dict())
    return int(sum(p.numel() for name, p in model.named_parameters() if name in saved))


@torch.no_grad()
def count_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of Conv2d and Linear layers for one forward pass of ``x`` (batch 1)."""
    total = [0]

    def conv_hook(m: nn.Conv2d, inp, out) -> None:
        kh, kw = m.kernel_size
        total[0] += out.numel() // out.shape[0] * (m.in_channels // m.groups) * kh * kw

    def linear_hook(m: nn.Linear, inp, out) -> None:
        total[0] += out.numel() // out.shape[0] * m.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    return int(total[0])


def build_loader(cfg, split: str):
    """The config's ``<split>_dataloader`` in this process (``num_workers=0``)."""
    from mmengine.runner import Runner
    key = f'{split}_dataloader'
    if cfg.get(key) is None:
        raise ConfigError(f'{cfg.filename} has no {key}: export needs it')
    loader_cfg = copy.deepcopy(cfg[key])
    loader_cfg['num_workers'] = 0
    loader_cfg['persistent_workers'] = False
    loader_cfg.pop('prefetch_factor', None)
    return Runner.build_dataloader(loader_cfg, seed=0)


def evaluate(model: nn.Module, cfg, split: str = 'test', loader=None) -> Dict[str, Any]:
    """The config's ``<split>_evaluator`` over its ``<split>_dataloader`` (what ``tools/test.py`` computes)."""
    from mmengine.evaluator import Evaluator

    from sscma.utils.jsonable import to_jsonable
    key = f'{split}_evaluator'
    if cfg.get(key) is None:
        raise ConfigError(f'{cfg.filename} has no {key}')
    loader = loader if loader is not None else build_loader(cfg, split)
    metrics = copy.deepcopy(cfg[key])
    evaluator = Evaluator(metrics if isinstance(metrics, list) else [metrics])
    evaluator.dataset_meta = getattr(loader.dataset, 'metainfo', None)
    model.eval()
    with torch.no_grad():
        for data in loader:
            outputs = model.test_step(data)
            evaluator.process(data_samples=outputs, data_batch=data)
    return to_jsonable(evaluator.evaluate(len(loader.dataset)))
