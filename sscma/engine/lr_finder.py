"""Learning-rate range test (Smith, 2017; the fastai "LR finder").

The lr grows exponentially from ``min_lr`` to ``max_lr`` over ``num_iters`` training steps of the config's
model, optimizer and train dataloader. A causal, bias-corrected moving average of the loss, whose window is
about 5 % of the steps, stops the sweep once it exceeds ``diverge_factor`` x its best (or the loss becomes
non-finite). The suggestion is read from a centred (Gaussian) smoothing of the raw loss, which has no lag:
the lr where it falls fastest (per decade of lr) before its minimum; the lr of its minimum divided by 10 is
reported too. Nothing is written to disk except the optional plot and json: the runner works in a temporary
folder, no checkpoint is saved, and the sweep changes only the in-memory model.
"""
import copy
import json
import logging
import math
import os
import os.path as osp
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from mmengine.config import Config
from mmengine.model import is_model_wrapper
from scipy.ndimage import gaussian_filter1d

from sscma.utils.errors import ConfigError, SSCMAError


class LRFinderError(SSCMAError):
    """The sweep could not produce a suggestion (e.g. the loss diverged at once)."""


@dataclass
class LRFinderResult:
    """Outcome of :func:`find_lr`.

    Attributes:
        suggested_lr (float): lr where the centred smoothing of the loss falls fastest, before its minimum.
        min_loss_lr (float): lr at the (first) minimum of the centred smoothing.
        min_loss_lr_div10 (float): ``min_loss_lr / 10`` (not below ``min_lr``), a common conservative pick.
        lrs, losses (list[float]): The recorded raw curve, one entry per iteration.
        smoothed (list[float]): The causal moving average that drives the divergence stop.
        centred (list[float]): The centred (Gaussian) smoothing that drives the suggestion.
        window (int): Effective window of the moving average, in steps (``1 / (1 - beta)``).
        stop_reason (str): ``'completed'``, ``'diverged'`` (smoothed loss > ``diverge_factor`` x best) or
            ``'non-finite loss'``.
        warning (str): Set when the loss hardly fell (the suggestion is then unreliable).
    """
    suggested_lr: float
    min_loss_lr: float
    min_loss_lr_div10: float
    min_lr: float
    max_lr: float
    num_iters: int
    stop_reason: str
    lrs: List[float] = field(default_factory=list)
    losses: List[float] = field(default_factory=list)
    smoothed: List[float] = field(default_factory=list)
    centred: List[float] = field(default_factory=list)
    window: int = 0
    warning: str = ''

    def to_dict(self) -> Dict:
        return dict(asdict(self), iterations_run=len(self.lrs))


def exp_lr(step: int, min_lr: float, max_lr: float, num_iters: int) -> float:
    """lr of ``step`` (0-based) of an exponential sweep from ``min_lr`` to ``max_lr`` in ``num_iters`` steps."""
    return min_lr * (max_lr / min_lr)**(step / max(num_iters - 1, 1))


def smoothing_window(num_iters: int) -> int:
    """Window of the loss moving average: 5 % of the sweep, at least 3 and at most 25 steps.

    A fixed ``beta=0.98`` (a 50-step window) lags a 100-step sweep by half its length: the average is still
    falling when the raw loss has long bottomed out, and a divergence is noticed decades of lr too late.
    """
    return int(min(max(round(0.05 * num_iters), 3), 25))


def centred_smoothing(losses: List[float], window: int) -> Tuple[np.ndarray, np.ndarray]:
    """Gaussian smoothing (sigma = ``window`` steps) of the loss and its slope per step.

    Centred, so a fall is located where it happens rather than ``window`` steps later as with a moving
    average. Its kernel is positive: a spike near the divergence only raises its neighbours, whereas a
    Savitzky-Golay fit (negative lobes) can dip below the raw loss there and fake a minimum.
    """
    y = np.asarray(losses, dtype=float)
    return (gaussian_filter1d(y, window, mode='nearest'), gaussian_filter1d(y, window, order=1, mode='nearest'))


def suggest_lr(lrs: List[float], losses: List[float], window: int = 3) -> Tuple[float, float, List[float]]:
    """lr of the steepest fall of the centred smoothing per decade of lr, the lr of its minimum, and the curve.

    The minimum is the bottom of the first basin that comes within 20 % of the total fall of the lowest
    value: a model that collapses at a high lr (FOMO predicting background everywhere) can sit on a second,
    slightly lower plateau, which is no lr to train with. Candidates for the steepest fall run from half a
    window in (the edges are padded) to that minimum, so the rise after it is never suggested.
    """
    if len(lrs) < 3:
        raise LRFinderError(f'only {len(lrs)} points recorded; need at least 3 to find a slope')
    fit, slope = centred_smoothing(losses, window)
    slope = slope / np.gradient(np.log10(np.asarray(lrs, dtype=float)))  # per decade, also for uneven steps
    low = fit.min()
    end = int(np.argmax(fit <= low + 0.2 * (fit[0] - low)))
    while end + 1 < len(fit) and fit[end + 1] < fit[end]:
        end += 1
    start = min(window // 2, max(end - 1, 0))
    best = start + int(np.argmin(slope[start:end + 1]))
    return float(lrs[best]), float(lrs[end]), fit.tolist()


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if is_model_wrapper(model) else model


def _set_lr(optimizer: torch.optim.Optimizer, lr: float, ratios: List[float]) -> None:
    for group, ratio in zip(optimizer.param_groups, ratios):
        group['lr'] = lr * ratio


def find_lr(cfg: Config, min_lr: float = 1e-6, max_lr: float = 100.0, num_iters: int = 100,
            beta: Optional[float] = None, diverge_factor: float = 4.0) -> LRFinderResult:
    """Run the lr range test for a loaded training config.

    The model, the optimizer wrapper (``cfg.optim_wrapper``, with its ``paramwise_cfg``) and the train
    dataloader are built by an mmengine ``Runner`` working in a temporary folder; the model is initialised
    as training would (``init_cfg``, or ``cfg.load_from``). Each step is a ``train_step``: data
    preprocessor, ``model(**data, mode='loss')``, ``parse_losses``, ``optim_wrapper.update_params``. Param
    groups with an ``lr_mult`` keep their ratio to the swept lr.

    Args:
        cfg (Config): A loaded config with ``model``, ``optim_wrapper`` and ``train_dataloader``.
        min_lr (float): First lr. Defaults to 1e-6.
        max_lr (float): Last lr, if the loss has not diverged before (it usually has). Defaults to 100.
        num_iters (int): Steps of the sweep (the dataloader is cycled as needed). Defaults to 100.
        beta (float, optional): Factor of the loss moving average; None: ``1 - 1 / window`` with
            :func:`smoothing_window` (5 % of ``num_iters``). Defaults to None.
        diverge_factor (float): Stop once the smoothed loss exceeds this multiple of the best. Defaults to 4.
    """
    if not 0 < min_lr < max_lr:
        raise ConfigError(f'need 0 < min_lr < max_lr, got min_lr={min_lr}, max_lr={max_lr}')
    if num_iters < 3:
        raise ConfigError(f'num_iters={num_iters}: need at least 3 steps')
    for key in ('model', 'optim_wrapper', 'train_dataloader'):
        if cfg.get(key) is None:
            raise ConfigError(f'{cfg.filename}: no {key}; the lr finder needs model, optim_wrapper and '
                              'train_dataloader')
    from mmengine.runner import Runner

    cfg = copy.deepcopy(cfg)  # the caller's config is left as it was
    work_dir = tempfile.mkdtemp(prefix='sscma_lr_finder_')
    cfg.work_dir = work_dir
    cfg.launcher = 'none'
    cfg.resume = False
    cfg.log_level = 'WARNING'
    cfg.visualizer = None  # a private, lazily created visualizer in the temporary folder
    cfg.custom_hooks = []  # the sweep calls no hook
    cfg.experiment_name = osp.basename(work_dir)  # unique: a second sweep in this process gets its own logger
    runner = None
    try:
        runner = Runner.from_cfg(cfg)
        model = runner.model
        module = _unwrap(model)
        if hasattr(module, 'init_weights'):
            module.init_weights()
        if cfg.get('load_from'):
            runner.load_checkpoint(cfg.load_from)
        optim_wrapper = runner.build_optim_wrapper(cfg.optim_wrapper)
        if not hasattr(optim_wrapper, 'optimizer'):
            raise ConfigError('the lr finder supports one optimizer (optim_wrapper with a single "optimizer")')
        optimizer = optim_wrapper.optimizer
        base = optimizer.defaults.get('lr') or optimizer.param_groups[0]['lr']
        ratios = [g['lr'] / base if base else 1.0 for g in optimizer.param_groups]
        loader = runner.build_dataloader(cfg.train_dataloader, seed=runner.seed)
        if len(loader) == 0:
            raise ConfigError('the train dataloader yields no batch (fewer images than batch_size with '
                              'drop_last?)')
        return _sweep(model, module, optim_wrapper, loader, ratios, min_lr, max_lr, num_iters, beta,
                      diverge_factor)
    finally:
        if runner is not None:
            runner.visualizer.close()
            for handler in list(runner.logger.handlers):
                if isinstance(handler, logging.FileHandler):
                    handler.close()
                    runner.logger.removeHandler(handler)
        shutil.rmtree(work_dir, ignore_errors=True)


def _sweep(model, module, optim_wrapper, loader, ratios, min_lr, max_lr, num_iters, beta=None,
           diverge_factor=4.0) -> LRFinderResult:
    window = smoothing_window(num_iters) if beta is None else max(int(round(1 / (1 - beta))), 1)
    beta = 1 - 1 / window if beta is None else beta
    model.train()
    lrs: List[float] = []
    losses: List[float] = []
    smoothed: List[float] = []
    avg, best, stop = 0.0, math.inf, 'completed'
    batches = iter(loader)
    for step in range(num_iters):
        try:
            data = next(batches)
        except StopIteration:
            batches = iter(loader)
            data = next(batches)
        lr = exp_lr(step, min_lr, max_lr, num_iters)
        _set_lr(optim_wrapper.optimizer, lr, ratios)
        with optim_wrapper.optim_context(model):
            data = module.data_preprocessor(data, True)
            out = model(**data, mode='loss') if isinstance(data, dict) else model(*data, mode='loss')
        loss, _ = module.parse_losses(out)
        value = float(loss.detach())
        if not math.isfinite(value):
            stop = 'non-finite loss'
            break
        optim_wrapper.update_params(loss)
        avg = beta * avg + (1 - beta) * value
        smooth = avg / (1 - beta**(step + 1))
        lrs.append(lr)
        losses.append(value)
        smoothed.append(smooth)
        best = min(best, smooth)
        if step > 0 and smooth > diverge_factor * best:
            stop = 'diverged'
            break
    if len(lrs) < 3:
        raise LRFinderError(f'the loss became {"non-finite" if stop != "diverged" else "unstable"} after '
                            f'{len(lrs)} steps (lr {exp_lr(len(lrs), min_lr, max_lr, num_iters):.3g}); lower '
                            f'--min-lr (now {min_lr:g})')
    suggested, min_loss_lr, centred = suggest_lr(lrs, losses, window)
    drop = 1 - min(centred) / centred[0] if centred[0] > 0 else 0.0
    warning = '' if drop >= 0.05 else (
        f'the loss fell by only {drop:.1%} during the sweep, so the suggestion is unreliable: try more '
        '--num-iters, another lr range, or check the data and the loss')
    return LRFinderResult(suggested, min_loss_lr, max(min_loss_lr / 10, min_lr), min_lr, max_lr, num_iters, stop,
                          lrs, losses, smoothed, centred, window, warning)


def save_lr_finder(result: LRFinderResult, out_dir: str, extra: Optional[Dict] = None) -> Dict[str, str]:
    """Write ``lr_finder.json`` and ``lr_finder.png`` (loss against lr, log x) into ``out_dir``."""
    os.makedirs(out_dir, exist_ok=True)
    json_path, png_path = osp.join(out_dir, 'lr_finder.json'), osp.join(out_dir, 'lr_finder.png')
    with open(json_path, 'w', encoding='utf-8') as f:
        json.dump(dict(result.to_dict(), **(extra or {})), f, indent=1)

    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(result.lrs, result.losses, color='0.75', lw=1, label='loss')
    ax.plot(result.lrs, result.smoothed, color='C1', lw=1, label=f'moving average ({result.window} steps, stop rule)')
    ax.plot(result.lrs, result.centred, color='C0', lw=2, label='centred smoothing (suggestion)')
    for lr, color, name in ((result.suggested_lr, 'C3', 'steepest descent'),
                            (result.min_loss_lr_div10, 'C2', 'min loss / 10')):
        ax.axvline(lr, color=color, ls='--', lw=1, label=f'{name}: {lr:.2e}')
    ax.set_xscale('log')
    ax.set_xlabel('learning rate')
    ax.set_ylabel('loss')
    # like fastai: show the start of the curve and its fall, not the divergent tail
    first, low = result.centred[0], min(result.centred)
    top = first + 0.5 * (first - low) if first > low else max(result.centred)
    bottom = min(result.losses + result.centred)
    margin = 0.05 * (top - bottom) + 1e-8
    ax.set_ylim(bottom - margin, top + margin)
    ax.set_title(f'LR finder ({len(result.lrs)} steps, {result.stop_reason})')
    ax.grid(alpha=0.3, which='both')
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
    return dict(json=json_path, png=png_path)
