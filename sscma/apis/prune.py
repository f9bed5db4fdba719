"""Structured channel pruning of a trained model, then fine-tuning with its own config (``tools/prune.py``).

torch-pruning's :class:`~torch_pruning.DependencyGraph` finds the channels that must be removed together (a
conv's outputs, the BatchNorm after it, the depthwise conv and the next conv's inputs; the outputs of every
block joined by a skip connection), :class:`~torch_pruning.pruner.MetaPruner` removes the least important
ones by group L2 magnitude (``GroupMagnitudeImportance``), keeping widths multiples of ``round_to`` (8: what
int8 kernels of CMSIS-NN / Ethos-U like). The head is never pruned (FOMO's classifier convs, the classifier's
fc, PFLD's outputs keep their outputs; their *inputs* follow the backbone).

How the pruned architecture is stored: as **config data**, not as a pickled module. The pruned widths are
written into a new config file, ``<work dir>/config/<config name>_pruned.py``, that inherits the original
(``_base_``) and sets ``model.backbone.channels`` (one width per layer, see
:class:`~sscma.models.backbones.MobileNetV2`). That file + a state dict rebuild the pruned model exactly, so
``tools/test.py``, ``tools/export.py``, ``tools/train.py --resume`` take it like any other config, every
checkpoint loads with ``weights_only=True``, and top-level variables (``data_root``, ``num_classes``) still
propagate through the inherited chain. The price: only backbones whose widths a config can state are
prunable (sscma's MobileNetV2: FOMO, the MobileNetV2 classifiers, PFLD); others are refused in one line.
"""
import contextlib
import copy
import io
import os
import os.path as osp
import statistics
from typing import Any, Dict, List, Optional, Tuple

import torch
from mmengine.config import Config
from torch import nn

from sscma.utils import ConfigError, SSCMAError, load_config, register_all_modules
from sscma.deploy.measures import build_model
from sscma.deploy.targets.base import time_runs, torch_threads
from sscma.utils.checkpoint import checkpoint_class_names
from sscma.utils.config import config_source
from sscma.utils.jsonable import scalar_metrics

from .prune_report import headline_metric, write_prune_report
from .pruned_config import config_with_options, write_pruned_config
from .runner import test_model, train_model

PRUNABLE_BACKBONES = ('MobileNetV2', )
ROUND_TO = 8
MAX_RATIO = 0.9


# ------------------------------------------------------------------------------------------------ checks
def _type_name(component: Any) -> str:
    return str((component or {}).get('type', '')).split('.')[-1] if isinstance(component, dict) else ''


def check_prunable(cfg: Config, config: str) -> None:
    """Raise :class:`ConfigError` (one line) unless ``cfg.model`` is a model whose pruned widths a config can hold."""
    backbone = _type_name(cfg.model.get('backbone'))
    if backbone not in PRUNABLE_BACKBONES:
        raise ConfigError(
            f'{config}: tools/prune.py prunes models with the sscma MobileNetV2 backbone (FOMO, the MobileNetV2 '
            f'classifiers, PFLD); this one has {cfg.model.get("backbone", {}).get("type", "no backbone")!r}, '
            'whose pruned widths cannot be written into a config (it takes no per-layer channels)')
    neck = cfg.model.get('neck')
    if neck and _type_name(neck) not in ('GlobalAveragePooling', ):
        raise ConfigError(f'{config}: the neck {neck.get("type")!r} has no per-layer channels to store a pruned '
                          'width in; tools/prune.py supports MobileNetV2 models without a neck or with '
                          'GlobalAveragePooling')


def check_prune_args(ratio: Optional[float], target_macs: Optional[float], finetune_epochs: int,
                     iterative: int) -> None:
    """One-line :class:`ConfigError` for arguments outside their range."""
    if (ratio is None) == (target_macs is None):
        raise ConfigError('give exactly one of --ratio R (fraction of channels removed, e.g. 0.5) or --target-macs M')
    if ratio is not None and not 0 < ratio <= MAX_RATIO:
        raise ConfigError(f'--ratio {ratio}: expected a fraction of channels to remove in (0, {MAX_RATIO}], e.g. 0.5')
    if target_macs is not None and not target_macs > 0:
        raise ConfigError(f'--target-macs {target_macs}: expected a fraction of the float MACs in (0, 1) '
                          '(e.g. 0.6) or an absolute count > 1 (e.g. 5e6)')
    if not isinstance(finetune_epochs, int) or finetune_epochs < 0:
        raise ConfigError(f'--finetune-epochs {finetune_epochs}: expected an integer >= 0')
    if not isinstance(iterative, int) or iterative < 1:
        raise ConfigError(f'--iterative {iterative}: expected a number of pruning steps >= 1')
    if iterative > 1 and finetune_epochs == 0:
        raise ConfigError('--iterative needs --finetune-epochs >= 1 (the model is fine-tuned between the steps)')


def import_torch_pruning():
    try:
        import torch_pruning
    except ImportError:
        raise SSCMAError('tools/prune.py needs torch-pruning: ~/.cache/sscma/venv/bin/pip install '
                         'torch-pruning==1.6.1 (listed in requirements/runtime.txt)') from None
    return torch_pruning


# ------------------------------------------------------------------------------------------ model side
def input_shape_of(cfg: Config, config: str) -> Tuple[int, int, int]:
    """``(C, H, W)`` of the network input: ``imgsz`` (width, height) and the backbone's ``in_channels``."""
    imgsz = cfg.get('imgsz')
    if not (isinstance(imgsz, (tuple, list)) and len(imgsz) == 2):
        raise ConfigError(f'{config}: needs a top-level imgsz = (width, height) to trace the model for pruning')
    return int(cfg.model.backbone.get('in_channels', 3)), int(imgsz[1]), int(imgsz[0])


def backbone_channels(backbone: nn.Module) -> List:
    """The ``channels`` argument that rebuilds ``backbone`` (a possibly pruned MobileNetV2) layer for layer."""
    from sscma.models.backbones.mobilenet_v2 import ConvBNReLU6, InvertedResidual
    widths: List = []
    for layer in backbone.features:
        if isinstance(layer, ConvBNReLU6):
            widths.append(int(layer[0].out_channels))
        elif isinstance(layer, InvertedResidual):
            convs = [m for m in layer.conv.modules() if isinstance(m, nn.Conv2d)]
            depthwise = next(c for c in convs if c.groups > 1 or c.kernel_size != (1, 1))
            widths.append([int(depthwise.out_channels), int(convs[-1].out_channels)])
        else:
            raise SSCMAError(f'unexpected layer {type(layer).__name__} in the backbone')
    return widths


def count_macs_params(model: nn.Module, shape: Tuple[int, int, int]) -> Tuple[int, int]:
    """MACs (torch-pruning's ``count_ops_and_params``, batch 1) and parameters of ``model.forward`` in tensor mode."""
    tp = import_torch_pruning()
    with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):  # its ptflops-style warnings
        macs, params = tp.utils.count_ops_and_params(model.eval(), torch.zeros(1, *shape))
    return int(macs), int(params)


def measure_latency(model: nn.Module, shape: Tuple[int, int, int], runs: int = 30) -> float:
    """Median ms of one eager forward pass (batch 1, one thread), timed as the export report times files."""
    x = torch.rand(1, *shape)
    with torch_threads(1), torch.no_grad():
        return time_runs(lambda: model(x), runs)['median_ms']


def prune_once(model: nn.Module, shape: Tuple[int, int, int], ratio: float, round_to: int = ROUND_TO) -> nn.Module:
    """Remove ``ratio`` of the channels of every prunable group of ``model.backbone`` (+ neck), in place.

    Every layer outside the backbone and neck is in ``ignored_layers``: its outputs stay (the task's output
    layers keep their shape), its inputs follow the pruned backbone.
    """
    tp = import_torch_pruning()
    model.eval()  # tracing runs a forward pass: BatchNorm statistics must not move
    keep = {id(m) for part in ('backbone', 'neck') if getattr(model, part, None) is not None
            for m in getattr(model, part).modules()}
    ignored = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)) and id(m) not in keep]
    pruner = tp.pruner.MetaPruner(model, torch.rand(1, *shape), importance=tp.importance.GroupMagnitudeImportance(p=2),
                                  pruning_ratio=ratio, ignored_layers=ignored, round_to=round_to,
                                  global_pruning=False)
    pruner.step()
    return model


def ratio_for_target_macs(model: nn.Module, shape: Tuple[int, int, int], target: int, round_to: int = ROUND_TO,
                          tries: int = 8) -> Tuple[float, int]:
    """Smallest channel ratio (bisection, on copies) whose pruned model has at most ``target`` MACs."""
    lo, hi = 0.0, MAX_RATIO
    macs_hi = count_macs_params(prune_once(copy.deepcopy(model), shape, hi, round_to), shape)[0]
    if macs_hi > target:
        raise ConfigError(f'--target-macs {target:,}: even ratio {MAX_RATIO} leaves {macs_hi:,} MACs (widths are '
                          f'multiples of {round_to}, the head is kept); ask for at least {macs_hi:,}')
    best = (hi, macs_hi)
    for _ in range(tries):
        mid = (lo + hi) / 2
        macs = count_macs_params(prune_once(copy.deepcopy(model), shape, mid, round_to), shape)[0]
        if macs <= target:
            hi, best = mid, (mid, macs)
        else:
            lo = mid
    return round(best[0], 4), best[1]


def save_state(model: nn.Module, path: str, meta: Dict[str, Any]) -> str:
    """An mmengine-style checkpoint (state dict + plain metadata) that loads with ``weights_only=True``."""
    torch.save(dict(state_dict=model.state_dict(), meta=meta), path + '.tmp')
    os.replace(path + '.tmp', path)
    return path


# ------------------------------------------------------------------------------------------ evaluation
def _test(config: str, checkpoint: str, work_dir: str, name: str) -> Dict[str, Any]:
    """``tools/test.py config checkpoint`` in this process: the config's test split, pipeline and evaluator."""
    result = test_model(config, checkpoint, work_dir)
    return dict(metrics=scalar_metrics(result['metrics']), classes=result['classes'])


def _best_checkpoint(work_dir: str) -> str:
    best = sorted(f for f in os.listdir(work_dir) if f.startswith('best_') and f.endswith('.pth'))
    if best:
        return osp.join(work_dir, best[-1])
    last = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(last):
        with open(last, encoding='utf-8') as f:
            return f.read().strip()
    raise SSCMAError(f'fine-tuning wrote no checkpoint in {work_dir}')


# ---------------------------------------------------------------------------------------------- driver
def prune(config: str, checkpoint: str, ratio: Optional[float] = None, target_macs: Optional[float] = None,
          finetune_epochs: int = 10, iterative: int = 1, work_dir: Optional[str] = None,
          cfg_options: Optional[Dict[str, Any]] = None, evaluate: bool = True,
          latency_runs: int = 30) -> Dict[str, Any]:
    """Prune ``checkpoint`` of ``config``, fine-tune it, evaluate float vs pruned, write ``prune_report.md``.

    Args:
        config (str): The config the checkpoint was trained with.
        checkpoint (str): Its ``.pth``.
        ratio (float, optional): Fraction of the channels of each prunable group to remove (torch-pruning's
            ``pruning_ratio``), rounded so that widths stay multiples of 8.
        target_macs (float, optional): Instead of ``ratio``: at most this many MACs (a number > 1) or this
            fraction of the float model's MACs (<= 1); the ratio is found by bisection.
        finetune_epochs (int): Epochs of the config's own training loop after each pruning step (0: none).
        iterative (int): Pruning steps; step ``k`` brings the removed fraction to ``ratio * k / iterative``,
            each followed by ``finetune_epochs`` of fine-tuning.
        work_dir (str, optional): Output folder; default ``work_dirs/<config name>_pruned``.
        cfg_options (dict, optional): Overrides of the config (also written into the pruned config).
        evaluate (bool): Test float, pruned-before-fine-tuning and pruned models on the test split.
        latency_runs (int): Timed eager forward passes per model (0: no latency).

    Returns:
        dict: What ``prune_report.json`` holds (paths, widths, MACs, params, latency, metrics).
    """
    check_prune_args(ratio, target_macs, finetune_epochs, iterative)
    import_torch_pruning()
    register_all_modules()
    options = dict(cfg_options or {})
    cfg = load_config(config, options)
    check_prunable(cfg, config)
    if not osp.isfile(checkpoint):
        raise ConfigError(f'checkpoint file not found: {checkpoint}')
    stem = osp.splitext(osp.basename(config))[0]
    work_dir = osp.abspath(work_dir or osp.join('work_dirs', f'{stem}_pruned'))
    os.makedirs(work_dir, exist_ok=True)
    shape = input_shape_of(cfg, config)
    model = build_model(cfg, checkpoint, config)
    float_macs, float_params = count_macs_params(model, shape)
    report: Dict[str, Any] = dict(config=config, checkpoint=checkpoint, cfg_options={k: repr(v) for k, v in options.items()},
                                  work_dir=work_dir, input_shape=[1, *shape], round_to=ROUND_TO,
                                  importance='GroupMagnitudeImportance (L2)', iterative=iterative,
                                  finetune_epochs=finetune_epochs, float=dict(macs=float_macs, params=float_params,
                                                                              channels=backbone_channels(model.backbone)))
    if target_macs is not None:
        target = int(target_macs * float_macs) if target_macs <= 1 else int(target_macs)
        ratio, found = ratio_for_target_macs(model, shape, target)
        report['target_macs'] = target
        print(f'prune: --target-macs {target:,} ({target / float_macs:.1%} of {float_macs:,}) -> ratio {ratio}')
    report['ratio'] = ratio
    float_model = copy.deepcopy(model)

    head_has_in_channels = isinstance(cfg.model.get('head'), dict) and 'in_channels' in cfg.model.head
    steps, removed_before = [], 0.0
    current_config, current_ckpt = config, checkpoint
    for step in range(1, iterative + 1):
        removed = ratio * step / iterative
        step_ratio = 1 - (1 - removed) / (1 - removed_before)  # of what the previous step left
        removed_before = removed
        step_dir = work_dir if step == iterative else osp.join(work_dir, f'step_{step}')
        os.makedirs(step_dir, exist_ok=True)
        if step > 1:
            model = build_model(load_config(current_config), current_ckpt, current_config)
        prune_once(model, shape, step_ratio)
        channels = backbone_channels(model.backbone)
        head_in = channels[-1][-1] if isinstance(channels[-1], list) else channels[-1]  # the backbone's output
        note = (f'{config} ({checkpoint}) with {removed:.0%} of the backbone channels removed '
                f'(step {step}/{iterative}, torch-pruning MetaPruner, GroupMagnitudeImportance, round_to={ROUND_TO})')
        # in a folder of its own: mmengine dumps the resolved config of every run as <work dir>/<config name>
        pruned_config = write_pruned_config(osp.join(step_dir, 'config', f'{stem}_pruned.py'), config, options,
                                            channels,
                                            head_in if head_has_in_channels else None,
                                            finetune_epochs or None, note)
        # the written config must rebuild exactly this model: build it and load the pruned weights strictly
        init_ckpt = save_state(model, osp.join(step_dir, 'pruned_init.pth'),
                               meta=dict(pruned_from=osp.abspath(checkpoint), config=osp.abspath(pruned_config),
                                         ratio=removed, step=step, channels=channels,
                                         dataset_meta=dict(classes=checkpoint_class_names(checkpoint) or []),
                                         config_source=config_source(pruned_config)))
        rebuilt = build_model(load_config(pruned_config), init_ckpt, pruned_config)
        macs, params = count_macs_params(rebuilt, shape)
        entry = dict(step=step, removed=removed, config=pruned_config, init_checkpoint=init_ckpt, channels=channels,
                     macs=macs, params=params)
        print(f'prune: step {step}/{iterative}: {macs:,} MACs ({macs / float_macs:.1%}), {params:,} params '
              f'({params / float_params:.1%}); config {pruned_config}')
        if finetune_epochs:
            entry['checkpoint'] = finetune(pruned_config, init_ckpt, step_dir)
        else:
            entry['checkpoint'] = init_ckpt
        steps.append(entry)
        current_config, current_ckpt = pruned_config, entry['checkpoint']
    final = steps[-1]
    report['steps'] = steps
    report['pruned'] = dict(config=final['config'], checkpoint=final['checkpoint'], channels=final['channels'],
                            macs=final['macs'], params=final['params'])
    final_model = build_model(load_config(final['config']), final['checkpoint'], final['config'])
    if latency_runs:  # alternating rounds, so that load from other processes hits both models alike
        rounds = [(measure_latency(float_model, shape, latency_runs), measure_latency(final_model, shape, latency_runs))
                  for _ in range(5)]
        report['float']['latency_ms'] = statistics.median(r[0] for r in rounds)
        report['pruned']['latency_ms'] = statistics.median(r[1] for r in rounds)
    if evaluate:
        print('prune: testing the float model, the pruned model before and after fine-tuning (test split)')
        float_eval = _test(config_with_options(config, options, work_dir), checkpoint,
                           osp.join(work_dir, 'test_float'), 'float')
        report['float']['metrics'] = float_eval['metrics']
        report['classes'] = float_eval['classes']
        if finetune_epochs:
            report['pruned']['metrics_before_finetune'] = _test(
                final['config'], final['init_checkpoint'], osp.join(work_dir, 'test_pruned_init'), 'init')['metrics']
        report['pruned']['metrics'] = _test(final['config'], final['checkpoint'], work_dir, 'pruned')['metrics']
        report['headline_metric'] = headline_metric(cfg, report['float']['metrics'])
    report['report_files'] = write_prune_report(report, work_dir)
    return report


def finetune(pruned_config: str, init_checkpoint: str, work_dir: str) -> str:
    """Train ``pruned_config`` from ``init_checkpoint`` with the config's own loop (``tools/train.py --load-from``)."""
    train_model(pruned_config, work_dir, load_from=init_checkpoint)
    return _best_checkpoint(work_dir)
