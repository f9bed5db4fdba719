"""``sscma benchmark``: every export format of a model side by side, like ``yolo benchmark``.

Runs ``sscma export`` (the same function, the same arguments; every default target and precision unless
narrowed) and prints one table: per exported file its size, the test metric of the config's best-checkpoint
key on the test split (and the difference from PyTorch), and its latency on this machine; files that could
not be made are listed with the reason. The full report is ``export_report.md`` beside the files.
"""
import argparse
from typing import Any, Dict, List

from .export import add_arguments as add_export_arguments
from .export import run_export

DESCRIPTION = 'Export to every format and compare size, test metric and latency (like `yolo benchmark`)'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_export_arguments(parser)


def benchmark_rows(report: Dict[str, Any], metric: str) -> List[List[str]]:
    """``[format, precision, size, metric, difference, latency]`` per file, PyTorch first."""
    def latency(value) -> str:
        return f'{value["median_ms"]:.2f} ms ({value["runtime"]})' if value else '-'

    base = (report.get('float_metrics') or {}).get(metric)
    rows = [['PyTorch', 'float32', '-', '-' if base is None else f'{base:.4f}', '', latency(report['float_latency'])]]
    for e in report['exports']:
        value = (e.get('metrics') or {}).get(metric)
        delta = '' if value is None or base is None else f'{value - base:+.4f}'
        rows.append([e['target'], e['precision'], f'{e["size_bytes"] / 1024:.1f} KiB',
                     '-' if value is None else f'{value:.4f}', delta, latency(e.get('latency'))])
    for f in report['failed']:
        rows.append([f['target'], f['precision'], 'failed: ' + f['error'].split('\n')[0][:80], '-', '', '-'])
    return rows


def main(args: argparse.Namespace) -> None:
    from sscma.apis.tune import best_metric_of
    from sscma.utils import load_config
    done = run_export(args)
    if done is None:
        return
    config, options, report = done
    metric = best_metric_of(load_config(config, options))[0]
    if metric in (None, 'auto'):  # the first number the test reports
        numbers = [k for k, v in (report.get('float_metrics') or {}).items() if isinstance(v, (int, float))]
        metric = numbers[0] if numbers else 'metric'
    header = ['format', 'precision', 'size', f'test {metric}', 'vs PyTorch', 'latency (median, batch 1)']
    rows = [header] + benchmark_rows(report, metric)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for r in rows:
        print('  '.join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    print(f'report: {report["report_files"]["markdown"]}')
