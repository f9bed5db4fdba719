"""Anomaly detection on the generated sets: fit, test, int8 TFLite / TFLite Micro, one table.

    python tools/benchmarks/anomaly_benchmark.py --work-dir work_dirs/anomaly_bench [--config CONFIG]
        [--categories coin surface document] [--cfg-options per_cell=False ...]

For each category, runs ``tools/train.py`` (one fitting pass; the threshold picked on the validation half),
``tools/test.py`` on the last checkpoint and ``tools/export.py --targets tflite tflm --precisions float32 int8
--device xiao_esp32s3``, each in its own process, and prints a markdown table of test image AUROC, pixel
AUROC, AUPRO and F1 for PyTorch and the int8 files, the TFLM arena and the wall time of each step.
"""
import argparse
import json
import os.path as osp
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
KEYS = ('image_auroc', 'pixel_auroc', 'aupro', 'f1')


def run(tool: str, *args: str) -> float:
    t0 = time.perf_counter()
    cmd = [sys.executable, osp.join(REPO, 'tools', tool), *args]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f'{" ".join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}')
    return time.perf_counter() - t0


def measure(config: str, category: str, work: str, options) -> dict:
    opts = ['--cfg-options', f'builtin_dataset={category}', *options]
    fit_s = run('train.py', config, '--work-dir', work, *opts)
    ckpt = osp.join(work, 'epoch_1.pth')
    test_s = run('test.py', config, ckpt, '--work-dir', osp.join(work, 'test'), *opts)
    export = osp.join(work, 'export')
    export_s = run('export.py', config, ckpt, '--targets', 'tflite', 'tflm', '--precisions', 'float32', 'int8',
                   '--device', 'xiao_esp32s3', '--latency-runs', '5', '--work-dir', export, *opts)
    report = json.load(open(osp.join(export, 'export_report.json')))
    rows = dict(pytorch=json.load(open(osp.join(work, 'test', 'results.json')))['test'])
    arena = None
    for e in report['exports']:
        if e['precision'] == 'int8':
            rows[e['target'] + ' int8'] = e.get('metrics', {})
            arena = (e.get('tflm') or {}).get('arena_bytes', arena)
    return dict(category=category, rows=rows, arena=arena, fit_s=fit_s, test_s=test_s, export_s=export_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default=osp.join('configs', 'anomaly', 'anomaly_mobnetv2_128.py'))
    parser.add_argument('--work-dir', default=osp.join('work_dirs', 'anomaly_bench'))
    parser.add_argument('--categories', nargs='+', default=['coin', 'surface', 'document'])
    parser.add_argument('--cfg-options', nargs='*', default=[])
    args = parser.parse_args()
    print('| set | model | ' + ' | '.join(f'test {k}' for k in KEYS) + ' | TFLM arena | fit / test / export s |')
    print('|' + ' --- |' * (len(KEYS) + 4))
    for category in args.categories:
        res = measure(args.config, category, osp.join(args.work_dir, category), args.cfg_options)
        for name, metrics in res['rows'].items():
            values = ' | '.join(f'{metrics.get("anomaly/" + k, float("nan")):.4f}' for k in KEYS)
            extra = (f'{res["arena"]:,} B' if name == 'tflm int8' and res['arena'] else '')
            times = f'{res["fit_s"]:.0f} / {res["test_s"]:.0f} / {res["export_s"]:.0f}' if name == 'pytorch' else ''
            print(f'| {category} | {name} | {values} | {extra} | {times} |', flush=True)


if __name__ == '__main__':
    main()
