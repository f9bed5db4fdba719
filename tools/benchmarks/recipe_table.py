"""Train, test and export a config on several variants (data sets, options), and print one markdown table.

    python tools/benchmarks/recipe_table.py CONFIG --variants NAME[:k=v,k=v] ... --keys METRIC ... \
        [--work-dir DIR] [--device xiao_esp32s3] [--cfg-options k=v ...]

For each variant (``coin:builtin_dataset=coin``; options after the colon, comma-separated, added to
``--cfg-options``), runs ``tools/train.py``, ``tools/test.py`` on the last checkpoint and ``tools/export.py --targets
tflite tflm --precisions float32 int8``, each in its own process, and prints the test metrics ``--keys`` of
PyTorch and the int8 files, the TFLite Micro arena and the wall time of each step. Used for the tables of
docs/anomaly.md and docs/segmentation.md.
"""
import argparse
import json
import os.path as osp
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def run(tool: str, *args: str) -> float:
    t0 = time.perf_counter()
    cmd = [sys.executable, osp.join(REPO, 'tools', tool), *args]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f'{" ".join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}')
    return time.perf_counter() - t0


def measure(config: str, work: str, options, device: str) -> dict:
    opts = ['--cfg-options', *options] if options else []
    fit_s = run('train.py', config, '--work-dir', work, *opts)
    last = open(osp.join(work, 'last_checkpoint')).read().strip()
    ckpt = last if osp.isabs(last) else osp.join(work, osp.basename(last))
    test_s = run('test.py', config, ckpt, '--work-dir', osp.join(work, 'test'), *opts)
    export = osp.join(work, 'export')
    export_s = run('export.py', config, ckpt, '--targets', 'tflite', 'tflm', '--precisions', 'float32', 'int8',
                   '--device', device, '--latency-runs', '5', '--work-dir', export, *opts)
    report = json.load(open(osp.join(export, 'export_report.json')))
    rows = dict(pytorch=json.load(open(osp.join(work, 'test', 'results.json')))['test'])
    arena = None
    for e in report['exports']:
        if e['precision'] == 'int8':
            rows[e['target'] + ' int8'] = e.get('metrics', {})
            arena = (e.get('tflm') or {}).get('arena_bytes', arena)
    return dict(rows=rows, arena=arena, fit_s=fit_s, test_s=test_s, export_s=export_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--variants', nargs='+', required=True, help='NAME or NAME:k=v,k=v')
    parser.add_argument('--keys', nargs='+', required=True, help='test metrics to show, e.g. seg/mIoU')
    parser.add_argument('--work-dir', default=osp.join('work_dirs', 'recipe_table'))
    parser.add_argument('--device', default='xiao_esp32s3')
    parser.add_argument('--cfg-options', nargs='*', default=[])
    args = parser.parse_args()
    print('| variant | model | ' + ' | '.join(f'test {k}' for k in args.keys) + ' | TFLM arena | fit / test / export s |')
    print('|' + ' --- |' * (len(args.keys) + 4))
    for variant in args.variants:
        name, _, extra = variant.partition(':')
        options = list(args.cfg_options) + [o for o in extra.split(',') if o]
        res = measure(args.config, osp.join(args.work_dir, name), options, args.device)
        for model, metrics in res['rows'].items():
            values = ' | '.join(f'{metrics.get(k, float("nan")):.4f}' for k in args.keys)
            arena = f'{res["arena"]:,} B' if model == 'tflm int8' and res['arena'] else ''
            times = f'{res["fit_s"]:.0f} / {res["test_s"]:.0f} / {res["export_s"]:.0f}' if model == 'pytorch' else ''
            print(f'| {name} | {model} | {values} | {arena} | {times} |', flush=True)


if __name__ == '__main__':
    main()
