"""Defaults that follow the data: settings a config leaves to the training split, chosen at the start of training.

A config opts in with a top-level ``auto_imgsz = dict(min_object_px=8, max_side=192, multiple=8)``: when the
objects of the training split would be smaller than ``min_object_px`` at the config's input size (their 25th
percentile shorter side, after the resize the pipeline does), the input grows until they are not, but never
past the images' own size (upsampling adds no detail) nor ``max_side``, and never below the config's size. The
choice and its reason are printed in one line; an ``imgsz`` given by the user (``--cfg-options``), a resumed run
and a config without ``auto_imgsz`` are left alone. The chosen value is added to the run's options, so every
checkpoint carries it (``sscma test`` / ``export`` / ``predict`` of the checkpoint use the same input).
Measured on the benchmark suite (docs/benchmarks.md).
"""
import math
from typing import Any, Dict, Optional, Tuple

import numpy as np
from mmengine.config import Config

from sscma.utils.errors import ConfigError

Choice = Tuple[Dict[str, Any], str]


def _train_records(cfg: Config):
    """The training split's records (``width``, ``height``, ``instances`` with file-pixel boxes) as the training
    dataset reads them."""
    from sscma.datasets.detection_dataset import load_detection_split
    dataset = cfg.train_dataloader.dataset
    while dataset.get('type') in ('ConcatDataset', 'RepeatDataset', 'ClassBalancedDataset') and 'dataset' in dataset:
        dataset = dataset.dataset
    if str(dataset.get('type', '')).split('.')[-1] != 'DetectionDataset':
        raise ConfigError(f'auto_imgsz reads box annotations: train_dataloader.dataset is {dataset.get("type")!r}, '
                          'not DetectionDataset; remove auto_imgsz from the config or give imgsz')
    root = dataset.get('data_root') or ''
    if not root:
        if dataset.get('builtin') != 'fomo_objects':
            return None
        from sscma.datasets.builtin import ensure_fomo_coco
        root = str(ensure_fomo_coco())
    _, _, records, _ = load_detection_split(root, dataset.get('split', 'train'), dataset.get('format', 'auto'),
                                            dataset.get('ann_file'), dataset.get('img_dir'))
    return records


def choose_imgsz(default: Tuple[int, int], records, min_object_px: float = 8.0, max_side: int = 192,
                 multiple: int = 8) -> Choice:
    """``({'imgsz': (w, h)} or {}, reason)`` for a detector whose pipeline resizes every image to ``default``
    ``(w, h)`` without keeping the ratio (the rule of the module docstring)."""
    w0, h0 = default
    sides, sizes = [], []
    for rec in records:
        sx, sy = w0 / rec['width'], h0 / rec['height']
        sizes.append((rec['width'], rec['height']))
        for inst in rec['instances']:
            x0, y0, x1, y1 = inst['bbox']
            sides.append(min((x1 - x0) * sx, (y1 - y0) * sy))
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


def data_defaults(cfg: Config, cfg_options: Optional[Dict[str, Any]], resume: bool) -> Choice:
    """The options the config's data rules choose for this run (``{}`` when none applies) and the line that
    says what was chosen and why (``''`` when the config has no rule)."""
    rule = cfg.get('auto_imgsz')
    if not rule:
        return {}, ''
    if resume:  # the run's own options carry its size
        return {}, ''
    if 'imgsz' in (cfg_options or {}):
        return {}, f'imgsz {tuple(cfg.imgsz)} as given'
    if not isinstance(rule, dict) or set(rule) - {'min_object_px', 'max_side', 'multiple'}:
        raise ConfigError(f'auto_imgsz={rule!r}: expected a dict with keys min_object_px, max_side, multiple')
    records = _train_records(cfg)
    if records is None:
        return {}, ''
    return choose_imgsz(tuple(cfg.imgsz), records, **rule)
