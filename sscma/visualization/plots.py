"""Matplotlib figures saved as PNG: training curves and confusion matrices."""
import json
import os.path as osp
from collections import defaultdict
from typing import Dict, List, Optional, Sequence

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def read_scalars(path: str) -> List[dict]:
    """Read mmengine's ``vis_data/scalars.json`` (one JSON object per line)."""
    records = []
    with open(path, encoding='utf-8') as f:
        for line in f:
            line = line.strip()
            if line:
                records.append(json.loads(line))
    return records


def plot_training_curves(scalars_json: str, out_png: str) -> Optional[str]:
    """Plot training losses and learning rate by step, the training against the validation loss by epoch (when
    validation computed one, :class:`~sscma.engine.hooks.ValLossHook`), and validation metrics by epoch.

    Returns the written path, or None when the log holds nothing to plot.
    """
    if not osp.isfile(scalars_json):
        return None
    train: Dict[str, List] = defaultdict(list)
    val: Dict[str, List] = defaultdict(list)
    train_by_epoch: Dict[int, List[float]] = defaultdict(list)
    for rec in read_scalars(scalars_json):
        step = rec.get('step')
        is_train = 'loss' in rec or 'lr' in rec
        if is_train and 'loss' in rec and 'epoch' in rec:
            train_by_epoch[rec['epoch']].append(rec['loss'])
        for key, value in rec.items():
            if key in ('step', 'epoch', 'iter', 'time', 'data_time', 'memory') or not isinstance(
                    value, (int, float)):
                continue
            (train if is_train else val)[key].append((step, value))
    losses = {k: v for k, v in train.items() if 'loss' in k}
    by_epoch = {}
    if val.get('val_loss'):
        by_epoch = {'val_loss': val['val_loss']}
        if train_by_epoch:  # logged by iteration without epochs: the validation loss alone
            by_epoch['training loss (mean of the logged values)'] = sorted(
                (e, sum(v) / len(v)) for e, v in train_by_epoch.items())
    val = {k: pts for k, pts in val.items() if 'loss' not in k}
    # counts (FOMO's tp/fp/fn) would flatten the ratio curves: keep one scale per panel
    if any(max(y for _, y in pts) <= 1.0 for pts in val.values()):
        val = {k: pts for k, pts in val.items() if max(y for _, y in pts) <= 1.0}
    lr = {'lr': train['lr']} if train.get('lr') else {}
    titled = [(p, t) for p, t in ((losses, 'training loss (by iteration)'), (lr, 'learning rate (by iteration)'),
                                  (by_epoch, 'training vs validation loss (by epoch)'),
                                  (val, 'validation (by epoch)')) if p]
    if not losses and not val and not by_epoch:
        return None
    fig, axes = plt.subplots(1, len(titled), figsize=(5 * len(titled), 3.6), squeeze=False)
    for ax, (panel, title) in zip(axes[0], titled):
        for key, points in sorted(panel.items()):
            xs, ys = zip(*points)
            by_step = panel is losses or panel is lr
            ax.plot(xs, ys, label=key, marker=None if by_step or len(xs) >= 30 else 'o', markersize=3)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


def plot_confusion_matrix(matrix: np.ndarray, class_names: Sequence[str], out_png: str,
                          title: str = 'confusion matrix') -> str:
    """Draw a confusion matrix (rows: ground truth, columns: prediction) with counts in the cells."""
    matrix = np.asarray(matrix)
    n = len(matrix)
    size = max(4.0, 0.45 * n + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap='Blues')
    ax.set_xticks(range(n), labels=list(class_names)[:n], rotation=45, ha='right', fontsize=8)
    ax.set_yticks(range(n), labels=list(class_names)[:n], fontsize=8)
    ax.set_xlabel('predicted')
    ax.set_ylabel('ground truth')
    ax.set_title(title)
    peak = matrix.max() if matrix.size else 0
    for i in range(n):
        for j in range(n):
            ax.text(j, i, int(matrix[i, j]), ha='center', va='center', fontsize=7,
                    color='white' if matrix[i, j] > peak / 2 else 'black')
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png
