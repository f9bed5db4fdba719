"""Defaults that follow the data: settings a config leaves to the training split, chosen at the start of training.

A config opts in with a top-level ``auto_imgsz = dict(min_object_px=8, max_side=192, multiple=8)``: when the
objects of the training split would be smaller than ``min_object_px`` at the config's input size (their 25th
percentile shorter side, after the resize the pipeline does), the input grows until they are not, but never
past the images' own size (upsampling adds no detail) nor ``max_side``, and never below the config's size. The
choice and its reason are printed in one line; an ``imgsz`` given by the user (``--cfg-options``) and a config
without ``auto_imgsz`` are left alone; a resumed run takes the choices stored in the checkpoint it continues.
The chosen value is added to the run's options, so every checkpoint carries it (``sscma test`` / ``export`` /
``predict`` of the checkpoint use the same input).

A detector config with a top-level ``stages`` (the backbone stages its neck reads) opts in to
``auto_stages = dict(max_object_px=64, small=dict(stages=(1, 2, 4), neck_channels=32))``: when the training
split's objects have a median side (square root of the box area, at the input) under ``max_object_px``, the run
takes the options in ``small`` (levels of finer stride, which small objects need and objects of 100 px and more
do not; a narrower neck and head keep the multiply-accumulates near the config's). A FOMO config (one stage, the
cut of the backbone) opts in the other way, ``auto_stages = dict(min_object_px=24, large=dict(stages=(3, )),
multiple=16)``: when even the training split's smaller objects are large (25th-percentile side at least
``min_object_px`` at the input, an input of multiples of ``multiple``), the run takes ``large``, a cut of coarser
stride whose cells are nearer the objects' size. Options the user gives (``stages``, ``neck_channels``) are left
alone.

``auto_epochs = dict(min_iters=1000, max_epochs=300)`` lengthens the schedule of a small training split: when
``max_epochs`` epochs of it are fewer than ``min_iters`` optimizer steps (``ceil(images / batch)`` a step each
epoch), the run takes the epochs that reach ``min_iters``, at most ``max_epochs``; the epoch-based parts of the
config (warm-up, validation intervals) follow, as for any ``max_epochs`` override. A ``max_epochs`` (or
``epochs``) given by the user is kept. The rules were measured on the benchmark suite (docs/benchmarks.md).
"""
import math
from typing import Any, Dict, Optional, Set, Tuple

import numpy as np
from mmengine.config import Config

from sscma.utils.errors import ConfigError

Choice = Tuple[Dict[str, Any], str]


def _unwrapped(dataset) -> Tuple[Any, int]:
    """The dataset config inside mmengine's dataset wrappers, and how many times an epoch reads each of its
    images (the ``times`` of ``RepeatDataset`` wrappers)."""
    times = 1
    while dataset.get('type') in ('ConcatDataset', 'RepeatDataset', 'ClassBalancedDataset') and 'dataset' in dataset:
        times *= int(dataset.get('times', 1)) if dataset.get('type') == 'RepeatDataset' else 1
        dataset = dataset.dataset
    return dataset, times


def _train_records(cfg: Config):
    """The training split's records (``width``, ``height``, ``instances`` with file-pixel boxes) as the training
    dataset reads them."""
    from sscma.datasets.detection_dataset import load_detection_split
    dataset, _ = _unwrapped(cfg.train_dataloader.dataset)
    if str(dataset.get('type', '')).split('.')[-1] != 'DetectionDataset':
        raise ConfigError(f'the data rules (auto_imgsz, auto_stages, auto_epochs) read box annotations: '
                          f'train_dataloader.dataset is {dataset.get("type")!r}, not DetectionDataset; remove the rule '
                          'from the config or give imgsz / stages / max_epochs')
    root = dataset.get('data_root') or ''
    if not root:
        if dataset.get('builtin') != 'fomo_objects':
            return None
        from sscma.datasets.builtin import ensure_fomo_coco
        root = str(ensure_fomo_coco())
    _, _, records, _ = load_detection_split(root, dataset.get('split', 'train'), dataset.get('format', 'auto'),
                                            dataset.get('ann_file'), dataset.get('img_dir'))
    if dataset.get('keep_empty') is False:  # the dataset trains on these alone
        records = [rec for rec in records if rec['instances']]
    return records


def _boxes_at(imgsz: Tuple[int, int], records):
    """Every object's ``(width, height)`` in pixels of the network input ``imgsz`` ``(w, h)`` (the pipeline
    resizes each file to it without keeping the ratio)."""
    w0, h0 = imgsz
    for rec in records:
        sx, sy = w0 / rec['width'], h0 / rec['height']
        for inst in rec['instances']:
            x0, y0, x1, y1 = inst['bbox']
            yield (x1 - x0) * sx, (y1 - y0) * sy


def choose_imgsz(default: Tuple[int, int], records, min_object_px: float = 8.0, max_side: int = 192,
                 multiple: int = 8) -> Choice:
    """``({'imgsz': (w, h)} or {}, reason)`` for a detector whose pipeline resizes every image to ``default``
    ``(w, h)`` without keeping the ratio (the rule of the module docstring)."""
    w0, h0 = default
    sides = [min(w, h) for w, h in _boxes_at(default, records)]
    sizes = [(rec['width'], rec['height']) for rec in records]
    if not sides:
        return {}, f'imgsz {w0}x{h0} kept (no objects in the training split)'
    small = float(np.percentile(sides, 25))
    if small >= min_object_px:
        return {}, (f'imgsz {w0}x{h0} kept: objects\' 25th-percentile side is {small:.1f} px at that input '
                    f'(>= {min_object_px:g})')
    file_w, file_h = (float(np.median([s[k] for s in sizes])) for k in (0, 1))
    grow = min_object_px / max(small, 1e-6)
    w, h = min(w0 * grow, max(file_w, w0)), min(h0 * grow, max(file_h, h0))
    fit = min(1.0, max_side / max(w, h))
    w, h = max(w * fit, min(w0, max_side)), max(h * fit, min(h0, max_side))
    w, h = (int(math.ceil(v / multiple) * multiple) for v in (w, h))
    if (w, h) == (w0, h0):
        return {}, (f'imgsz {w0}x{h0} kept: objects\' 25th-percentile side is {small:.1f} px at that input, but the '
                    f'images ({file_w:.0f}x{file_h:.0f}) or max_side={max_side} leave no room to grow')
    reached = small * min(w / w0, h / h0)
    return {'imgsz': (w, h)}, (f'imgsz {w}x{h} (config: {w0}x{h0}): objects\' 25th-percentile side would be '
                               f'{small:.1f} px at {w0}x{h0}, {reached:.1f} px at {w}x{h} (goal >= {min_object_px:g}; '
                               f'images {file_w:.0f}x{file_h:.0f}, max_side {max_side}); the int8 arena grows about '
                               f'{w * h / (w0 * h0):.1f}x: check the board with sscma export --device')


def choose_stages(imgsz: Tuple[int, int], records, current, max_object_px: Optional[float] = None,
                  small: Optional[Dict[str, Any]] = None, min_object_px: Optional[float] = None,
                  large: Optional[Dict[str, Any]] = None, multiple: int = 1) -> Choice:
    """``(options or {}, reason)`` for a model reading backbone stages ``current`` at input ``imgsz`` ``(w, h)``
    (the ``auto_stages`` rule of the module docstring): ``small`` (default ``{'stages': (1, 2, 4)}``) when the
    objects' median side is under ``max_object_px`` (default 64), or, given ``min_object_px``, ``large`` when
    their 25th-percentile side is at least ``min_object_px`` and the input's sides are multiples of ``multiple``
    (the coarser cut's stride, which the exported model's output grid needs)."""
    w0, h0 = imgsz
    coarse = min_object_px is not None
    if coarse and (max_object_px is not None or small is not None or not large or 'stages' not in large):
        raise ConfigError(f'auto_stages: min_object_px={min_object_px!r} goes with large=dict(stages=...) alone '
                          f'(got max_object_px={max_object_px!r}, small={small!r}, large={large!r})')
    options = dict(large if coarse else (small or {'stages': (1, 2, 4)}))
    current = tuple(int(i) for i in current)
    said = ' '.join(f'{k}={tuple(v) if isinstance(v, (list, tuple)) else v}' for k, v in options.items())
    sides = [math.sqrt(max(w, 0.0) * max(h, 0.0)) for w, h in _boxes_at(imgsz, records)]
    if not sides:
        return {}, f'stages {current} kept (no objects in the training split)'
    if coarse:
        side = float(np.percentile(sides, 25))
        misfit = bool(w0 % multiple or h0 % multiple)
        if side < min_object_px or current == tuple(options['stages']) or misfit:
            why = f'; the input is no multiple of {multiple}' if misfit and side >= min_object_px else ''
            return {}, (f'stages {current} kept: objects\' 25th-percentile side is {side:.1f} px at {w0}x{h0} '
                        f'({said} from {min_object_px:g}{why})')
        return options, (f'{said} (config: stages {current}): objects\' 25th-percentile side is {side:.1f} px at '
                         f'{w0}x{h0}, at least {min_object_px:g}: a coarser cut, whose cells (and the F1\'s '
                         'tolerance of one cell) are larger')
    max_object_px = 64.0 if max_object_px is None else max_object_px
    median = float(np.median(sides))
    if median >= max_object_px or current == tuple(options.get('stages', ())):
        return {}, (f'stages {current} kept: objects\' median side is {median:.1f} px at {w0}x{h0} '
                    f'({said} below {max_object_px:g})')
    return options, (f'{said} (config: stages {current}): objects\' median side is {median:.1f} px at {w0}x{h0}, '
                     f'under {max_object_px:g}: the neck reads levels of finer stride; check the board\'s arena '
                     'with sscma export --device')


def choose_epochs(max_epochs: int, batch: int, images: int, min_iters: int = 1000,
                  most: int = 300) -> Choice:
    """``({'max_epochs': n} or {}, reason)`` for a schedule of ``max_epochs`` epochs over ``images`` training
    images at batch size ``batch`` (the ``auto_epochs`` rule of the module docstring; ``most`` is its
    ``max_epochs``)."""
    steps = max(1, math.ceil(images / max(1, batch)))
    if max_epochs * steps >= min_iters:
        return {}, (f'max_epochs {max_epochs} kept: {max_epochs * steps} steps ({images} samples an epoch, batch '
                    f'{batch}; >= {min_iters})')
    epochs = min(int(most), math.ceil(min_iters / steps))
    if epochs <= max_epochs:
        return {}, f'max_epochs {max_epochs} kept ({max_epochs * steps} steps; the rule allows at most {most})'
    return {'max_epochs': epochs}, (f'max_epochs {epochs} (config: {max_epochs}): {images} training samples an '
                                    f'epoch are {steps} steps at batch {batch}; {epochs * steps} steps (goal >= '
                                    f'{min_iters}, at most {most} epochs)')


def size_pair(value) -> Tuple[int, int]:
    """A size given as one number or as ``(w, h)``, as an ``(w, h)`` pair of ints."""
    return (int(value), int(value)) if isinstance(value, (int, float)) else tuple(int(v) for v in value)


def _checked(rule, name: str, keys) -> Dict[str, Any]:
    if not isinstance(rule, dict) or set(rule) - set(keys):
        raise ConfigError(f'{name}={rule!r}: expected a dict with keys {", ".join(keys)}')
    return rule


def rule_keys(cfg: Config) -> Set[str]:
    """The options the config's data rules may choose."""
    keys = {'imgsz'} if cfg.get('auto_imgsz') else set()
    if cfg.get('auto_epochs'):
        keys.add('max_epochs')
    rule = cfg.get('auto_stages')
    if isinstance(rule, dict):
        keys |= set(rule.get('small') or rule.get('large') or {'stages': None})
    return keys


def resumed_choices(cfg: Config, cfg_options: Optional[Dict[str, Any]], checkpoint: str) -> Choice:
    """The data rules' choices stored in ``checkpoint`` (its run's options) for what ``cfg_options`` does not
    give: a resumed run goes on with the input size and architecture it started with."""
    from sscma.apis.model_config import embedded_config
    keys = rule_keys(cfg) - set(cfg_options or {})
    embedded = embedded_config(checkpoint) if keys else None
    stored = embedded[1] if embedded else {}
    chosen = {k: stored[k] for k in sorted(keys) if k in stored}
    return chosen, ('as the resumed run chose: ' + ' '.join(f'{k}={v}' for k, v in chosen.items())) if chosen else ''


def _schedule_given(given: Dict[str, Any]) -> bool:
    return any(k in ('max_epochs', 'epochs') or k.endswith('.max_epochs') for k in given)


def data_defaults(cfg: Config, cfg_options: Optional[Dict[str, Any]]) -> Choice:
    """The options the config's data rules choose for this run (``{}`` when none applies) and the line that
    says what was chosen and why (``''`` when the config has no rule)."""
    size_rule, stages_rule, epochs_rule = (cfg.get(k) for k in ('auto_imgsz', 'auto_stages', 'auto_epochs'))
    if not (size_rule or stages_rule or epochs_rule):
        return {}, ''
    given = cfg_options or {}
    if size_rule:
        _checked(size_rule, 'auto_imgsz', ('min_object_px', 'max_side', 'multiple'))
    if stages_rule:
        _checked(stages_rule, 'auto_stages', ('max_object_px', 'small', 'min_object_px', 'large', 'multiple'))
        if cfg.get('stages') is None:
            raise ConfigError('auto_stages needs a top-level stages variable in the config (the backbone stages the '
                              'model reads); remove auto_stages or define stages')
    if epochs_rule:
        _checked(epochs_rule, 'auto_epochs', ('min_iters', 'max_epochs'))
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in epochs_rule.values()):
            raise ConfigError(f'auto_epochs={epochs_rule!r}: min_iters and max_epochs must be positive integers')
        if not isinstance(cfg.get('max_epochs'), int):
            raise ConfigError('auto_epochs needs a top-level integer max_epochs variable in the config (the schedule '
                              'length it lengthens); remove auto_epochs or define max_epochs')
    records = None
    if ((size_rule and 'imgsz' not in given) or (stages_rule and 'stages' not in given)
            or (epochs_rule and not _schedule_given(given))):
        records = _train_records(cfg)
        if records is None:
            return {}, ''
    chosen, lines = {}, []
    if size_rule:
        if 'imgsz' in given:
            lines.append(f'imgsz {tuple(cfg.imgsz)} as given')
        else:
            choice, why = choose_imgsz(size_pair(cfg.imgsz), records, **size_rule)
            chosen.update(choice)
            lines.append(why)
    if stages_rule:
        if 'stages' in given:
            lines.append(f'stages {tuple(cfg.stages)} as given')
        else:
            choice, why = choose_stages(size_pair(chosen.get('imgsz', cfg.imgsz)), records, cfg.stages, **stages_rule)
            chosen.update({k: v for k, v in choice.items() if k not in given})  # what the user gives stays
            lines.append(why)
    if epochs_rule:
        if _schedule_given(given):
            lines.append(f'max_epochs {cfg.train_cfg.get("max_epochs", cfg.max_epochs)} as given')
        else:
            rule = dict(epochs_rule)
            choice, why = choose_epochs(cfg.max_epochs, int(cfg.train_dataloader.get('batch_size', 1)),
                                        len(records) * _unwrapped(cfg.train_dataloader.dataset)[1],
                                        rule.get('min_iters', 1000), rule.get('max_epochs', 300))
            chosen.update(choice)
            lines.append(why)
    return chosen, '; '.join(lines)
