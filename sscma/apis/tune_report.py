"""What ``sscma tune`` leaves behind: the leaderboard (markdown + JSON), metric against arena and MACs with the
Pareto front (PNG), and the best trial as a config file ``sscma train`` takes."""
import json
import os.path as osp
from typing import Any, Dict, List, Optional

from .tune import nested_options


def cost_key(rows: List[Dict[str, Any]]) -> str:
    """What the Pareto front trades the metric against: the measured arena when the search had a board, else
    MACs."""
    return 'arena' if any(r.get('arena') for r in rows) else 'macs'


def pareto_front(rows: List[Dict[str, Any]], direction: str) -> List[Dict[str, Any]]:
    """The complete trials that no other beats on both the metric and the cost (:func:`cost_key`)."""
    key = cost_key(rows)
    better = (lambda a, b: a > b) if direction == 'maximize' else (lambda a, b: a < b)
    # trained to the end only: a trial Hyperband stopped after an epoch is cheap but not comparable
    done = [r for r in rows if r['value'] is not None and r.get(key) is not None and r['state'] == 'complete']
    front = []
    for r in done:
        dominated = any((better(o['value'], r['value']) and o[key] <= r[key])
                        or (o['value'] == r['value'] and o[key] < r[key]) for o in done)
        if not dominated:
            front.append(r)
    return sorted(front, key=lambda r: r[key])


def write_leaderboard(rows: List[Dict[str, Any]], metric: str, direction: str, work_dir: str,
                      device: Optional[str] = None) -> Dict[str, str]:
    """``leaderboard.md``, ``leaderboard.json`` and ``pareto.png`` in ``work_dir``; returns their paths."""
    front = {r['trial'] for r in pareto_front(rows, direction)}
    lines = [f'# sscma tune: {metric} ({direction}) per trial, best first', '',
             '| trial | state | ' + metric + ' | int8 TFLM arena (KiB) | int8 flatbuffer (KiB) | MACs (M) | '
             + ('fits ' + device + ' | ' if device else '') + 'train s | Pareto | overrides |',
             '| ---: | --- | ---: | ---: | ---: | ---: | ' + ('--- | ' if device else '') + '---: | --- | --- |']
    for r in rows:
        value = '-' if r['value'] is None else f'{r["value"]:.4f}'
        fits = ('yes' if r['fits'] else 'no' if r['fits'] is not None else '-') + ' | ' if device else ''
        kib = (lambda b: '-' if b is None else f'{b / 1024:.1f}')
        macs = '-' if r['macs'] is None else f'{r["macs"] / 1e6:.1f}'
        secs = '-' if r['seconds'] is None else f'{r["seconds"]:.0f}'
        over = ', '.join(f'{k}={v}' for k, v in r['overrides'].items()) + (f' ({r["note"]})' if r.get('note') else '')
        lines.append(f'| {r["trial"]} | {r["state"]} | {value} | {kib(r["arena"])} | {kib(r["flash"])} | {macs} | '
                     f'{fits}{secs} | {"*" if r["trial"] in front else ""} | {over} |')
    paths = dict(markdown=osp.join(work_dir, 'leaderboard.md'), json=osp.join(work_dir, 'leaderboard.json'),
                 png=osp.join(work_dir, 'pareto.png'))
    with open(paths['markdown'], 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines) + '\n')
    with open(paths['json'], 'w', encoding='utf-8') as f:
        json.dump(dict(metric=metric, direction=direction, device=device, trials=rows), f, indent=2)
    _plot(rows, front, metric, paths['png'])
    return paths


def _plot(rows, front, metric: str, path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    key = cost_key(rows)
    scale_x, label = (1 / 1024, 'int8 TFLM arena (KiB)') if key == 'arena' else (1e-6, 'MACs (M)')
    done = [r for r in rows if r['value'] is not None and r.get(key) is not None]
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    if done:
        macs = [max(r['macs'] or 0, 1) for r in done]
        size = [20 + 400 * m / max(macs) for m in macs] if key == 'arena' else 40
        points = ax.scatter([r[key] * scale_x for r in done], [r['value'] for r in done], s=size,
                            c=[r['trial'] for r in done], cmap='viridis', alpha=0.7)
        fig.colorbar(points, ax=ax, label='trial')
        line = sorted((r for r in done if r['trial'] in front), key=lambda r: r[key])
        ax.plot([r[key] * scale_x for r in line], [r['value'] for r in line], 'r--', label='Pareto front')
        for r in done:
            ax.annotate(str(r['trial']), (r[key] * scale_x, r['value']), fontsize=7)
        ax.legend(fontsize=8)
    ax.set_xlabel(label)
    ax.set_ylabel(metric)
    ax.set_title('trials: metric vs ' + ('arena (marker area: MACs)' if key == 'arena' else 'MACs'))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_best_config(config: str, options: Dict[str, Any], overrides: Dict[str, Any], path: str,
                      note: str) -> str:
    """A config inheriting ``config`` with the search's ``options`` and the best trial's ``overrides``. A dotted
    option (``model.head.score_thr``, ``val_evaluator.tolerance_px``) is written as its whole top-level dict, as
    loading the options gives it: a child config's dict replaces its base's."""
    from sscma.utils import load_config
    from sscma.utils.packaged_configs import PACKAGE_SCOPE, packaged_configs_dir
    given = {**options, **overrides}
    values = nested_options(given)
    dotted = [k for k in values if any(o.startswith(f'{k}.') for o in given)]
    if dotted:
        cfg = load_config(config, given)
        values.update({k: cfg[k].to_dict() if hasattr(cfg[k], 'to_dict') else cfg[k] for k in dotted})
    packaged = osp.realpath(packaged_configs_dir())
    rel = osp.relpath(osp.realpath(config), packaged)
    base = PACKAGE_SCOPE + rel if not rel.startswith('..') else osp.abspath(config)
    lines = [f'# {note}', f'_base_ = [{base!r}]', '']
    for key, value in values.items():
        value = tuple(value) if key == 'imgsz' and isinstance(value, list) else value
        lines.append(f'{key} = {value!r}')
    with open(path, 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines) + '\n')
    return path
