"""``prune_report.md`` / ``.json`` and the closing lines of ``tools/prune.py``: float vs pruned side by side."""
import json
import os
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence

from mmengine.config import Config


def headline_metric(cfg: Config, metrics: Dict[str, float]) -> Optional[str]:
    """The metric the config keeps its best checkpoint by (``save_best``), else the first one."""
    best = ((cfg.get('default_hooks') or {}).get('checkpoint') or {}).get('save_best')
    if isinstance(best, str) and best in metrics:
        return best
    return next(iter(metrics), None)


def _summary_metrics(report: Dict[str, Any]) -> List[str]:
    """Metric columns: the headline one first, then the others that are not per class."""
    metrics = report['float'].get('metrics') or {}
    classes = report.get('classes') or []
    per_class = tuple(f'{c}_' for c in classes)
    keys = [k for k in metrics if not k.split('/')[-1].startswith(per_class) and not k.endswith(('/tp', '/fp', '/fn'))]
    head = report.get('headline_metric')
    if head in keys:
        keys.remove(head)
        keys.insert(0, head)
    return keys[:6]


def _fmt(v: Optional[float]) -> str:
    return '-' if v is None else f'{v:.4f}'


def markdown(report: Dict[str, Any]) -> str:
    """``prune_report.md``: float vs pruned side by side, in the export report's table style."""
    f, p = report['float'], report['pruned']
    lines = ['# Pruning report', '',
             f'- config: `{report["config"]}`', f'- checkpoint: `{report["checkpoint"]}`',
             f'- pruned config: `{p["config"]}` (pass it to tools/test.py, tools/export.py, tools/train.py --resume)',
             f'- pruned checkpoint: `{p["checkpoint"]}`',
             f'- torch-pruning MetaPruner, {report["importance"]}, ratio {report["ratio"]} of each prunable group\'s '
             f'channels (round_to={report["round_to"]}), {report["iterative"]} step(s), {report["finetune_epochs"]} '
             'fine-tuning epoch(s) per step; the head is not pruned',
             f'- MACs: torch-pruning `count_ops_and_params`, batch 1, input {"x".join(map(str, report["input_shape"]))}; '
             'latency: PyTorch eager, batch 1, one thread, median of 5 alternating rounds', '']
    keys = _summary_metrics(report) if f.get('metrics') else []
    header = ['model', 'params', 'MACs', 'MACs vs float', 'latency median (ms)', 'latency vs float'] + keys
    lines += ['| ' + ' | '.join(header) + ' |', '| --- ' * len(header) + '|']

    def row(name: str, entry: Dict[str, Any], metrics: Optional[Dict[str, float]]) -> str:
        lat, flat = entry.get('latency_ms'), f.get('latency_ms')
        cells = [name, f'{entry["params"]:,}', f'{entry["macs"]:,}', f'{entry["macs"] / f["macs"]:.1%}',
                 _fmt(lat) if lat is not None else '-', f'{lat / flat:.2f}x' if lat and flat else '-']
        for k in keys:
            got, base = (metrics or {}).get(k), f['metrics'].get(k)
            cells.append('-' if got is None else _fmt(got) if metrics is f['metrics'] else f'{_fmt(got)} ({got - base:+.4f})')
        return '| ' + ' | '.join(cells) + ' |'

    lines.append(row('float', f, f.get('metrics')))
    if p.get('metrics_before_finetune') is not None:
        lines.append(row('pruned, before fine-tuning', dict(p, latency_ms=p.get('latency_ms')),
                         p['metrics_before_finetune']))
    lines.append(row('pruned + fine-tuned' if report['finetune_epochs'] else 'pruned', p, p.get('metrics')))
    lines += ['', f'Backbone widths (float): `{f["channels"]}`', '', f'Backbone widths (pruned): `{p["channels"]}`']
    return '\n'.join(lines) + '\n'


def write_prune_report(report: Dict[str, Any], work_dir: str) -> Dict[str, str]:
    paths = dict(json=osp.join(work_dir, 'prune_report.json'), markdown=osp.join(work_dir, 'prune_report.md'))
    report = dict(report, report_files=paths)
    for key, text in (('json', json.dumps(report, indent=2)), ('markdown', markdown(report))):
        with open(paths[key] + '.tmp', 'w', encoding='utf-8') as fh:
            fh.write(text)
        os.replace(paths[key] + '.tmp', paths[key])
    return paths


def summary_lines(report: Dict[str, Any]) -> Sequence[str]:
    """What ``tools/prune.py`` prints at the end."""
    f, p = report['float'], report['pruned']
    out = [f'pruned: {p["macs"]:,} MACs ({p["macs"] / f["macs"]:.1%} of {f["macs"]:,}), {p["params"]:,} params '
           f'({p["params"] / f["params"]:.1%})']
    head = report.get('headline_metric')
    if head and p.get('metrics'):
        out.append(f'test {head}: float {f["metrics"][head]:.4f}, pruned {p["metrics"].get(head, float("nan")):.4f}')
    out += [f'config {p["config"]}', f'checkpoint {p["checkpoint"]}', f'report {report["report_files"]["markdown"]}']
    return out
