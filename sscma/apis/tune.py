"""Hyperparameter search over a config with Optuna (``sscma tune``): each trial a real training run.

Optuna's TPE sampler proposes values of the config's own top-level variables (:data:`SEARCH_SPACE`: the lr,
the schedule length, the input size, the width, augmentation strength and loss weights where a config defines
them); Hyperband prunes a trial on its validation metric, from a sixth of the config's schedule on
(:func:`first_rung`). The first trial is the config as it is, so the leaderboard always holds the default.
Trials live in ``WORK_DIR/tune.db`` (SQLite): a search killed and started again goes on where it stopped.
With a board, each new architecture (input size, width) is first exported untrained to int8 TFLite Micro,
exactly as ``sscma export --device`` does, and a proposal whose measured arena or flatbuffer does not fit the
board is never trained.
"""
import copy
import json
import math
import os
import os.path as osp
import re
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from mmengine.hooks import Hook

from sscma.apis.data_defaults import rule_keys, size_pair
from sscma.utils.packaged_weights import has_imagenet_weights
from sscma.utils import ConfigError

STUDY = 'sscma-tune'
EVALUATORS = ('val_evaluator', 'test_evaluator')
#: what the metric judges every trial at (:meth:`Tuner.judging`), for the evaluators that match within a tolerance
JUDGED = tuple(f'{k}.tolerance_px' for k in EVALUATORS)
#: variables that do not change the exported model (the rest of a proposal is its architecture)
TRAINING_ONLY = ('base_lr', 'max_epochs', 'aug_strength', 'loss_weight', 'mosaic', *JUDGED)


def _imgsz(trial, default) -> Tuple[int, int]:
    """The config's size (scale 1.0, as it is) or 0.75 / 1.25 / 1.5 of it in multiples of 32."""
    h, w = (default, default) if isinstance(default, int) else default
    scale = trial.suggest_categorical('imgsz_scale', [0.75, 1.0, 1.25, 1.5])
    if scale == 1.0:
        return int(h), int(w)
    return tuple(max(32, int(round(v * scale / 32)) * 32) for v in (h, w))


def _width(trial, default) -> float:
    """The config's width or a shipped width within 2.5x of it."""
    widths = {w for w in (0.1, 0.2, 0.25, 0.35, 0.5, 0.75, 1.0) if default / 2.5 <= w <= default * 2.5}
    return trial.suggest_categorical('widen_factor', sorted(widths | {float(default)}))


def _stages(trial, default) -> Tuple[int, ...]:
    """The MobileNetV2 stages a model reads: for a detector's neck (``rtmdet_mnv2_small_data.py``) the config's,
    levels at strides 8/16/32 ``(2, 4, 6)`` or at 4/8/16 ``(1, 2, 4)``, which small objects need; for FOMO's one
    cut the config's, stride 8 ``(2, )`` or 16 ``(3, )``, which large objects take (docs/benchmarks.md)."""
    choices = dict.fromkeys([_as_choice(default)] + (['2', '3'] if len(default) == 1 else ['2,4,6', '1,2,4']))
    return tuple(int(i) for i in trial.suggest_categorical('stages', list(choices)).split(','))


def _as_choice(stages) -> str:
    return ','.join(str(int(i)) for i in stages)


#: variable -> how a trial proposes it from the config's value; a config is searched over those it defines.
SEARCH_SPACE: Dict[str, Callable] = {
    'base_lr': lambda t, v: t.suggest_float('base_lr', v / 5, v * 5, log=True),
    'max_epochs': lambda t, v: t.suggest_int('max_epochs', max(2, v // 2), max(3, v * 2), step=max(1, v // 4)),
    'imgsz': _imgsz,
    'widen_factor': _width,
    'aug_strength': lambda t, v: t.suggest_float('aug_strength', 0.0, max(1.0, 2 * v)),
    'loss_weight': lambda t, v: t.suggest_float('loss_weight', v / 3, v * 3, log=True),
    # on or off: it helped some suite datasets and hurt others (docs/benchmarks.md)
    'mosaic': lambda t, v: t.suggest_categorical('mosaic', [0.0, 1.0]),
    'stages': _stages,
}


def parse_budget(text: str) -> float:
    """``'10m'`` -> 600.0 seconds (``s``, ``m``, ``h``; a bare number is seconds)."""
    match = re.fullmatch(r'\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*', str(text))
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(f'--budget {text}: expected a positive duration such as 600s, 10m or 1.5h')
    return float(match.group(1)) * {'': 1, 's': 1, 'm': 60, 'h': 3600}[match.group(2)]


class TrialReportHook(Hook):
    """Reports the metric at each validation to the Optuna trial; stops the run when Optuna prunes it or the
    search's time is up (the run's last value is kept)."""
    priority = 'LOW'

    def __init__(self, trial, metric: Optional[str], deadline: float) -> None:
        self.trial, self.metric, self.deadline = trial, metric, deadline
        self.values: List[float] = []

    def after_val_epoch(self, runner, metrics: Optional[Dict[str, float]] = None) -> None:
        import optuna
        metrics = metrics or {}
        if self.metric is None or self.metric == 'auto':
            self.metric = next(iter(metrics))
        if self.metric not in metrics:
            raise ConfigError(f'--metric {self.metric}: the validation reports {", ".join(metrics)}')
        value = float(metrics[self.metric])
        self.values.append(value)
        self.trial.report(value, step=runner.epoch)
        stop = None
        if self.trial.should_prune():
            stop = f'stopped by Hyperband at epoch {runner.epoch}'
        elif time.time() > self.deadline and runner.epoch < runner.max_epochs:
            stop = f'stopped at epoch {runner.epoch}: the time budget is spent'
        if stop:
            self.trial.set_user_attr('note', stop)
            raise optuna.TrialPruned(stop)


def direction_of(metric: Optional[str]) -> str:
    """mmengine's rule for a metric it has no rule for: lower is better for losses and errors."""
    return 'minimize' if metric and any(k in metric.lower() for k in ('loss', 'err', 'nme')) else 'maximize'


def best_metric_of(cfg) -> Tuple[Optional[str], str]:
    """The config's best-checkpoint metric and whether higher is better (``'maximize'`` / ``'minimize'``)."""
    checkpoint = (cfg.get('default_hooks') or {}).get('checkpoint') or {}
    metric = checkpoint.get('save_best')
    metric = metric[0] if isinstance(metric, (list, tuple)) else metric
    rule = checkpoint.get('rule')
    rule = rule[0] if isinstance(rule, (list, tuple)) else rule
    if rule is None:
        return metric, direction_of(metric)
    return metric, 'minimize' if rule == 'less' else 'maximize'


def first_rung(cfg, max_epochs: int) -> int:
    """The first epoch Hyperband compares trials at: a sixth of the config's schedule, at least one validation.
    At the first epochs a pretrained start scores above a scratch one and a lower lr below a higher one, whatever
    they reach at the end, so pruning there keeps the fast starters, not the best."""
    return max(int(cfg.train_cfg.get('val_interval', 1)), max_epochs // 6)


class Tuner:
    """One search: ``Tuner(config, options, work_dir).run(trials, budget_s)``."""

    def __init__(self, config: str, cfg_options: Optional[Dict[str, Any]], work_dir: str,
                 device: Optional[str] = None, metric: Optional[str] = None, seed: int = 0,
                 direction: Optional[str] = None, log: Callable[[str], None] = print) -> None:
        import optuna

        from sscma.apis.runner import prepare_train_config
        from sscma.deploy.devices import get_device
        from sscma.utils import top_level_variables
        from sscma.utils.config import _assigned_names, _base_files, _parse, resolve_aliases
        from sscma.utils.packaged_configs import find_config
        self.config, self.work_dir, self.log = find_config(config), work_dir, log
        os.makedirs(work_dir, exist_ok=True)
        assigned = set().union(*[_assigned_names(_parse(f)) for f in _base_files(self.config)])
        self.options = resolve_aliases(dict(cfg_options or {}), assigned)  # epochs= / lr= as the config names them
        self.device = get_device(device) if device else None
        cfg = prepare_train_config(self.config, osp.join(work_dir, 'probe'), self.options)
        default_metric, default_direction = best_metric_of(cfg)
        self.metric = metric or default_metric
        self.direction = direction or (default_direction if self.metric == default_metric else direction_of(metric))
        variables = top_level_variables(self.config)
        # a variable given in --cfg-options is fixed for every trial, not searched
        self.defaults = {k: variables[k] for k in SEARCH_SPACE
                         if variables.get(k) is not None and k not in self.options}
        for name in rule_keys(cfg) & set(self.defaults):  # what the config's data rules chose for this data
            self.defaults[name] = tuple(cfg[name]) if isinstance(cfg[name], (list, tuple)) else cfg[name]
        size = self.defaults.get('imgsz', self.options.get('imgsz', cfg.get('imgsz', 96)))
        if len(self.defaults.get('stages', ())) == 1 and any(v % 16 for v in size_pair(size)):
            del self.defaults['stages']  # FOMO's stride-16 cut needs an input of multiples of 16 (the output grid)
        self.init = self.options.get('init', variables.get('init'))
        self.judged = self.judging(cfg)
        # the options auto_stages pairs with the small-object stages (a narrower neck) go with them in every trial
        self.small_stages = dict((cfg.get('auto_stages') or {}).get('small') or {})
        if not self.defaults:
            raise ConfigError(f'{config}: nothing to search; it defines none of {", ".join(SEARCH_SPACE)} outside '
                              '--cfg-options')
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = f'sqlite:///{osp.abspath(osp.join(work_dir, "tune.db"))}'
        max_epochs = int(self.defaults.get('max_epochs', cfg.train_cfg.get('max_epochs', 1)))
        self.study = optuna.create_study(
            study_name=STUDY, storage=storage, load_if_exists=True, direction=self.direction,
            pruner=optuna.pruners.HyperbandPruner(min_resource=first_rung(cfg, max_epochs),
                                                  max_resource=max(2, max_epochs * 2), reduction_factor=3))
        if self.study.direction.name.lower() != self.direction:
            raise ConfigError(f'{work_dir}/tune.db holds a search that {self.study.direction.name.lower()}s its '
                              f'metric; this one would {self.direction} {self.metric}: use another --work-dir')
        # a resumed search must not replay its first proposals: the sampler's seed moves on with the trials stored
        self.study.sampler = optuna.samplers.TPESampler(seed=seed + len(self.study.trials), n_startup_trials=4)
        for trial in self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING, )):
            self.study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)  # killed
        if not self.study.trials:
            self.study.enqueue_trial(self._default_params())  # trial 0: the config as it is
        self.measured: Dict[str, Dict[str, Any]] = {}  # architecture -> its measured int8 footprint

    def _default_params(self) -> Dict[str, Any]:
        params = {}
        for name, value in self.defaults.items():
            if name == 'imgsz':
                params['imgsz_scale'] = 1.0
            elif name == 'stages':
                params['stages'] = _as_choice(value)
            else:
                params[name] = value
        return params

    def judging(self, cfg) -> Optional[Tuple[float, int, Tuple[str, ...]]]:
        """``(cell, input width, option keys)`` where the config's metric matches within a tolerance that defaults
        to one cell of the model (``FomoMetric``): trial 0's cell in input pixels, its input width and the
        evaluators to set; ``None`` for other metrics or a ``tolerance_px`` given in the config or options.

        Searching the cut (8 or 16 px cells) and the input size would otherwise judge trials at different
        tolerances in the image, and the coarser or smaller model would win by a looser test."""
        import inspect

        from sscma.registry import METRICS, MODELS
        evaluators = [k for k in EVALUATORS if isinstance(cfg.get(k), dict)]
        found = [METRICS.get(cfg[k].get('type', '')) for k in evaluators]
        if not evaluators or not all(m and 'tolerance_px' in inspect.signature(m).parameters for m in found) or \
                any('tolerance_px' in cfg[k] for k in evaluators):
            return None
        stride = getattr(getattr(MODELS.build(cfg.model), 'head', None), 'stride', None)
        if not stride:
            return None
        return float(stride), size_pair(cfg.imgsz)[0], tuple(f'{k}.tolerance_px' for k in evaluators)

    def propose(self, trial) -> Dict[str, Any]:
        """The trial's overrides of the config's variables (and, for FOMO, the tolerance it is judged at: trial
        0's cell, scaled with the input, so that every trial is judged within the same share of the image)."""
        proposal = {name: SEARCH_SPACE[name](trial, value) for name, value in self.defaults.items()}
        if self.judged:
            cell, width, keys = self.judged
            scaled = cell * (size_pair(proposal['imgsz'])[0] if 'imgsz' in proposal else width) / width
            proposal.update({key: round(scaled, 3) for key in keys})
        if 'stages' in proposal and proposal['stages'] == tuple(self.small_stages.get('stages', ())):
            proposal.update({k: v for k, v in self.small_stages.items() if k not in self.options and k != 'stages'})
        if self.init == 'imagenet' and not has_imagenet_weights(proposal.get('widen_factor', 1.0)):
            proposal['init'] = 'scratch'  # a width without packaged ImageNet features trains from random weights
        return proposal

    def footprint(self, proposal: Dict[str, Any]) -> Dict[str, Any]:
        """Parameters and MACs of the proposal's model; with a board, its int8 TFLM arena and flatbuffer size
        and the export's verdict, measured once per architecture on the untrained model."""
        from sscma.deploy.measures import count_macs
        from sscma.registry import MODELS
        from sscma.utils import load_config
        cfg = load_config(self.config, {**self.options, **proposal})
        model = MODELS.build(cfg.model).eval()
        hw = size_pair(cfg.get('imgsz') or (96, 96))
        channels = 1 if cfg.get('color_type') == 'grayscale' else int(cfg.get('in_channels', 3) or 3)
        found: Dict[str, Any] = dict(params=sum(p.numel() for p in model.parameters()),
                                     macs=count_macs(model, torch.zeros(1, channels, *hw)))
        if self.device is None:
            return found
        arch = json.dumps({k: v for k, v in sorted(proposal.items()) if k not in TRAINING_ONLY}, default=str)
        if arch not in self.measured:
            self.measured[arch] = self._measure_on_board(model, proposal, len(self.measured))
        return {**found, **self.measured[arch]}

    def _measure_on_board(self, model, proposal: Dict[str, Any], index: int) -> Dict[str, Any]:
        from sscma.deploy.exporter import export_model
        folder = osp.join(self.work_dir, 'footprints', f'arch_{index:02d}')
        ckpt = osp.join(folder, 'untrained.pth')
        os.makedirs(folder, exist_ok=True)
        torch.save(dict(state_dict=model.state_dict(), meta=dict()), ckpt)
        report = export_model(self.config, ckpt, targets=['tflite', 'tflm'], precisions=['int8'], calib_batches=1,
                              cfg_options={**self.options, **proposal}, run_eval=False, latency_runs=0,
                              devices=[self.device.name], work_dir=folder, log=lambda *a: None)
        from sscma.deploy.targets.tflm import read_c_model
        for entry in report['exports']:
            tflm = entry.get('tflm')
            if tflm:
                verdict = tflm['devices'][0]
                return dict(arena=tflm['arena_bytes'], flash=len(read_c_model(entry['file'])), fits=verdict['fits'],
                            verdict=verdict['line'])
        failed = '; '.join(f['error'] for f in report['failed']) or 'no TFLM file'
        return dict(arena=None, flash=None, fits=False, verdict=f'not exported to TFLM: {failed}')

    def objective(self, trial, deadline: float) -> float:
        import optuna
        from mmengine.runner import Runner

        from sscma.apis.runner import own_instances, prepare_train_config
        from sscma.engine.hooks import TrainingDiverged
        proposal = self.propose(trial)
        trial.set_user_attr('overrides', {k: list(v) if isinstance(v, tuple) else v for k, v in proposal.items()})
        size = self.footprint(proposal)
        for key in ('arena', 'flash', 'macs', 'params', 'fits'):
            trial.set_user_attr(key, size.get(key))
        if self.device is not None and not size['fits']:
            note = f'not trained: {size["verdict"]}'
            trial.set_user_attr('note', note)
            raise optuna.TrialPruned(note)
        work = osp.join(self.work_dir, f'trial_{trial.number:03d}')
        cfg = prepare_train_config(self.config, work, {**self.options, **proposal})
        cfg.log_level = 'WARNING'
        for hook in ('summary', 'val_loss'):  # per-trial results.json, validation loss: the leaderboard needs neither
            cfg.default_hooks.pop(hook, None)
        reporter = TrialReportHook(trial, self.metric, deadline)
        own_instances(cfg, 'tune')
        runner = Runner.from_cfg(cfg)
        runner.register_hook(reporter)
        start = time.time()
        try:
            runner.train()
        except TrainingDiverged as err:  # a proposed lr too high: a bad trial, not the end of the search
            trial.set_user_attr('note', f'diverged: {err}'.split(';')[0])
            raise optuna.TrialPruned('diverged') from None
        finally:
            _release(runner)
            trial.set_user_attr('seconds', round(time.time() - start, 1))
            trial.set_user_attr('work_dir', work)
            if reporter.values:
                trial.set_user_attr('best_value', max(reporter.values) if self.direction == 'maximize'
                                    else min(reporter.values))
            if self.metric in (None, 'auto') and reporter.metric:
                self.metric = reporter.metric
                self.study.set_user_attr('metric', reporter.metric)
        if not reporter.values:
            raise ConfigError(f'trial {trial.number} ran no validation: set val_interval <= max_epochs')
        self.study.set_user_attr('metric', self.metric)
        return trial.user_attrs['best_value']

    def run(self, trials: int, budget_s: float) -> List[Dict[str, Any]]:
        """Run until ``trials`` trials exist in the study or ``budget_s`` seconds have passed; returns the
        leaderboard rows (best first)."""
        import optuna
        deadline = time.time() + budget_s
        done = len([t for t in self.study.trials if t.state != optuna.trial.TrialState.WAITING])
        remaining = max(0, trials - done)
        if done:
            self.log(f'tune: {done} trials already in {self.work_dir}/tune.db; {remaining} more')

        def progress(study, frozen) -> None:
            value = frozen.user_attrs.get('best_value', frozen.value)
            shown = f'{value:.4f}' if isinstance(value, (int, float)) else '-'
            best = ''
            complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
            if complete:
                best = f'; best {study.best_value:.4f} (trial {study.best_trial.number})'
            left = max(0, deadline - time.time())
            note = f' ({frozen.user_attrs["note"]})' if frozen.user_attrs.get('note') else ''
            self.log(f'tune: trial {frozen.number} {frozen.state.name.lower()}{note}: {self.metric or "metric"} '
                     f'{shown}, {frozen.user_attrs.get("seconds", 0):.0f} s, {frozen.user_attrs.get("overrides")}'
                     f'{best}; {left / 60:.1f} min of budget left')

        if remaining:
            self.study.optimize(lambda t: self.objective(t, deadline), n_trials=remaining,
                                timeout=budget_s, callbacks=[progress], catch=())
        return leaderboard_rows(self.study, self.direction)

    def best_overrides(self) -> Dict[str, Any]:
        best = self.study.best_trial
        return dict(best.user_attrs['overrides'])


def _release(runner) -> None:
    """Close what a run left open when it ended before ``after_run`` (pruned, diverged): the visualizer's
    writers and the log file."""
    import logging
    try:
        runner.visualizer.close()
    except Exception:  # noqa: BLE001  (already closed)
        pass
    for handler in list(runner.logger.handlers):
        if isinstance(handler, logging.FileHandler):
            handler.close()
            runner.logger.removeHandler(handler)


def leaderboard_rows(study, direction: str) -> List[Dict[str, Any]]:
    """One row per trial (trained or refused), the best value first."""
    rows = []
    for t in study.trials:
        value = t.user_attrs.get('best_value', t.value)
        attrs = t.user_attrs
        rows.append(dict(trial=t.number, state=t.state.name.lower(), value=value, note=attrs.get('note', ''),
                         seconds=attrs.get('seconds'), arena=attrs.get('arena'), flash=attrs.get('flash'),
                         macs=attrs.get('macs'), fits=attrs.get('fits'), overrides=attrs.get('overrides', {}),
                         work_dir=attrs.get('work_dir')))
    sign = -1 if direction == 'maximize' else 1
    rows.sort(key=lambda r: (r['value'] is None or (isinstance(r['value'], float) and math.isnan(r['value'])),
                             sign * (r['value'] or 0), r['trial']))
    return rows


def nested_options(options: Dict[str, Any]) -> Dict[str, Any]:
    """``{'a.b': 1, 'c': 2}`` -> ``{'a': {'b': 1}, 'c': 2}`` (a child config's dicts merge into its base's)."""
    out: Dict[str, Any] = {}
    for key, value in options.items():
        node = out
        parts = key.split('.')
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = copy.deepcopy(value)
    return out
