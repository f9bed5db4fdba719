"""``export_report.json`` (everything, machine-readable) and ``export_report.md`` (the tables a person reads).

The rows come from the export targets (:meth:`ExportTarget.report_cells`, ``report_notes``, ``budget_lines``)
and the parity columns from the model's task (``report['parity_columns']``), so a plug-in target or
task shows up here without edits.
"""
import json
import os
import os.path as osp
from typing import Any, Dict, List

from sscma.utils.jsonable import scalar_metrics

from .targets.base import ExportTarget, fmt, format_measure, get_target, size_text


def _target(name: str) -> ExportTarget:
    try:
        return get_target(name)
    except Exception:  # a report of a plug-in target read where the plug-in is not imported
        return ExportTarget()


def _row(cells: List[Any]) -> str:
    return '| ' + ' | '.join(str(c) for c in cells) + ' |'


def markdown(report: Dict[str, Any]) -> str:
    inp, out = report['input'], report['output']
    norm = inp['normalization_in_graph']
    columns = report.get('parity_columns') or []
    header = ['file', 'target', 'precision', 'size', 'max abs diff (rel.)', *(c[0] for c in columns),
              'latency median (ms)']
    lines: List[str] = [
        '# Export report', '',
        f'- config: `{report["config"]}`', f'- checkpoint: `{report["checkpoint"]}`',
        f'- model: {report["model_type"]} ({report["task"] or "unknown task"}), {report["params"]:,} parameters, '
        f'{report["macs"]:,} MACs (Conv2d + Linear, batch 1)',
        f'- input `{inp["name"]}`: {"x".join(map(str, inp["shape"]))} {inp["layout"]} {inp["dtype"]}, '
        f'{inp["value_range"]}, channel order {inp["channel_order"]}; the data preprocessor\'s normalisation '
        f'(mean={norm["mean"]}, std={norm["std"]}) is inside the graph',
        f'- output `{out["name"]}`: {"x".join(map(str, out["shape"]))}, {out["meaning"]}',
        f'- post-processing: {report["postprocessing"]}',
        f'- parity: {report.get("parity_images")} validation images against PyTorch; latency: batch 1, one thread',
        '', _row(header), _row(['---'] * len(header)),
    ]
    for e in report['exports']:
        lines.append(_row([f'`{osp.basename(e["file"])}`', e['target'], e['precision'], size_text(e['size_bytes']),
                           *_target(e['target']).report_cells(e, columns)]))
    if report.get('float_latency'):
        perfect = report.get('reference_parity') or {}
        lines.append(_row(['(PyTorch eager)', '-', 'float32', '-', 0,
                           *(format_measure(perfect.get(key), kind) for _, key, kind in columns),
                           fmt(report['float_latency']['median_ms'], 3)]))
    blank = ' |' * (len(header) - 4)
    for s in report.get('skipped', []):
        lines.append(f'| - | {s["target"]} | {s["precision"]} | skipped: {s["reason"]} |{blank}')
    for f in report.get('failed', []):
        lines.append(f'| - | {f["target"]} | {f["precision"]} | FAILED: {f["error"].splitlines()[0][:300]} |{blank}')
    for e in report['exports']:
        for note in _target(e['target']).report_notes(e):
            lines += ['', note]
    budget = [line for e in report['exports'] for line in _target(e['target']).budget_lines(e)]
    if budget:
        lines += ['', '## Microcontroller / NPU budget', ''] + budget
    if report.get('float_metrics') is not None:
        base = scalar_metrics(report['float_metrics'])
        keys = list(base)
        lines += ['', f'## Metrics on the {report.get("eval_split", "test")} split (config pipeline + evaluator)', '',
                  '| model | ' + ' | '.join(keys) + ' |', '| --- ' * (len(keys) + 1) + '|',
                  '| PyTorch float32 | ' + ' | '.join(fmt(base[k]) for k in keys) + ' |']
        for e in report['exports']:
            if e.get('metrics') is None:
                continue
            got = scalar_metrics(e.get('metrics'))
            lines.append(f'| `{osp.basename(e["file"])}` | ' + ' | '.join(
                f'{fmt(got.get(k))} ({got[k] - base[k]:+.4g})' if k in got else '-' for k in keys) + ' |')
    elif report.get('eval_note'):
        lines += ['', report['eval_note']]
    return '\n'.join(lines) + '\n'


def write_report(report: Dict[str, Any], work_dir: str) -> Dict[str, str]:
    paths = dict(json=osp.join(work_dir, 'export_report.json'), markdown=osp.join(work_dir, 'export_report.md'))
    report = dict(report, report_files=paths)
    for key, text in (('json', json.dumps(report, indent=2)), ('markdown', markdown(report))):
        tmp = paths[key] + '.tmp'
        with open(tmp, 'w', encoding='utf-8') as f:
            f.write(text)
        os.replace(tmp, paths[key])
    return paths
