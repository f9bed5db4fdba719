"""Train and test one config on every dataset of the benchmark suite, as a user would, and write one table.

    python tools/benchmarks/make_suite.py SUITE          # once: the datasets
    python tools/benchmarks/suite.py CONFIG --suite SUITE [--cfg-options k=v ...] [--only NAME ...] [--no-export]
    python tools/benchmarks/suite.py ultralytics --suite SUITE --peer-path DIR [--epochs 120] [--imgsz N]
    python tools/benchmarks/suite.py CONFIG --suite SUITE --tune 10m [--tune-device BOARD]  # sscma tune vs the config

Per dataset, in subprocesses: ``tools/train.py CONFIG --cfg-options data_root=<dataset> num_classes=<K> ...``,
``tools/test.py`` on the best checkpoint alone, and (unless ``--no-export``) ``tools/export.py`` of that
checkpoint to int8 TFLite + TFLM, which scores both files with the same metric on the test split and measures
the TFLM arena. With ``--tune-device BOARD`` the search keeps only architectures whose int8 model fits the
board, and the winner's trained checkpoint is exported with ``--device BOARD`` to confirm it. Each step's wall
time and the peak resident memory of its process tree are measured. Writes
``suite_results.json`` and ``suite_results.md`` in the work dir (default ``work_dirs/suite_<config name>``).

``ultralytics`` in place of CONFIG trains the peer a user would pick instead, Ultralytics YOLO26n from scratch
(``ultralytics_peer.py``, installed in its own folder: ``pip install --no-deps --target DIR -r
tools/benchmarks/requirements-ultralytics.txt``) on a YOLO copy of each dataset, and reports its own mAP50.
``--imgsz`` (default: each dataset's longer image side, rounded up to a multiple of 32) is the input size;
give sscma configs the same with ``--cfg-options imgsz=...`` or ``--data-imgsz``.
"""
import argparse
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import time
from typing import Any, Dict, List, Tuple

import psutil

from sscma.utils import CfgOptionsAction, run_cli

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def run_measured(cmd: List[str], log_file: str) -> Dict[str, Any]:
    """Run ``cmd``; its exit code, wall seconds and the peak RSS (MiB) of its process tree (sampled each 0.2 s;
    the sum over processes, so pages shared by forked data workers count more than once: an upper bound)."""
    start, peak = time.time(), 0
    with open(log_file, 'w') as log:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        parent = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                rss = sum(p.memory_info().rss for p in [parent, *parent.children(recursive=True)])
                peak = max(peak, rss)
            except psutil.Error:
                pass
            time.sleep(0.2)
    return dict(rc=proc.returncode, seconds=round(time.time() - start, 1), peak_rss_mib=round(peak / 2 ** 20))


def dataset_options(entry: Dict[str, Any], options: Dict[str, Any]) -> Tuple[List[str], Dict[str, Any]]:
    """The ``--cfg-options`` that point a config at the dataset, and the first columns of its table row."""
    opts = [f'data_root={entry["data_root"]}', f'num_classes={len(entry["classes"])}',
            *[f'{k}={v}' for k, v in options.items()]]
    row = dict(dataset=entry['name'], layout=entry['layout'], classes=len(entry['classes']),
               train_images=entry['images']['train'])
    return opts, row


def score_checkpoint(checkpoint: str, metric: str, work: str) -> Tuple[int, Any]:
    """``tools/test.py`` of ``checkpoint`` (results in ``work``): its exit code and the test-split ``metric``."""
    run = run_measured([sys.executable, osp.join(REPO, 'tools', 'test.py'), checkpoint, '--work-dir', work],
                       osp.join(work, 'suite_test.log'))
    if run['rc'] != 0:
        return run['rc'], None
    return 0, (json.load(open(osp.join(work, 'results.json'))).get('test') or {}).get(metric)


def export_int8(checkpoint: str, folder: str, metric: str, log: str, device: str = None) -> Dict[str, Any]:
    """``tools/export.py`` of ``checkpoint`` to int8 TFLite + TFLM (and the verdict for ``device``): the test
    ``metric`` of both files, the TFLM arena, the board's verdict."""
    shutil.rmtree(folder, ignore_errors=True)  # never read an earlier run's report
    exp = run_measured([sys.executable, osp.join(REPO, 'tools', 'export.py'), checkpoint, '--targets', 'tflite',
                        'tflm', '--precisions', 'int8', '--latency-runs', '0', '--work-dir', folder]
                       + (['--device', device] if device else []), log)
    out: Dict[str, Any] = dict(export_rc=exp['rc'])
    reports = glob.glob(osp.join(folder, 'export_report.json'))
    for e in json.load(open(reports[0]))['exports'] if reports else []:
        value = (e.get('metrics') or {}).get(metric)
        if e['target'] == 'tflm':
            tflm = e.get('tflm') or {}
            out.update(int8_tflm_test=value, tflm_arena_bytes=tflm.get('arena_bytes'))
            if device and tflm.get('devices'):
                out.update(fits=tflm['devices'][0]['fits'], verdict=tflm['devices'][0]['line'])
        elif e['target'] == 'tflite':
            out['int8_tflite_test'] = value
    return out


def run_dataset(config: str, entry: Dict[str, Any], options: Dict[str, Any], work: str, export: bool) -> Dict:
    tool = lambda name: [sys.executable, osp.join(REPO, 'tools', name)]  # noqa: E731
    opts, row = dataset_options(entry, options)
    os.makedirs(work, exist_ok=True)
    train = run_measured(tool('train.py') + [config, '--work-dir', work, '--cfg-options', *opts],
                         osp.join(work, 'suite_train.log'))
    row.update(train_seconds=train['seconds'], train_peak_rss_mib=train['peak_rss_mib'])
    if train['rc'] != 0:
        return dict(row, error=f'training failed (exit {train["rc"]}), see {work}/suite_train.log')
    results = json.load(open(osp.join(work, 'results.json')))
    best = results.get('best') or {}
    row.update(metric=best.get('metric'), val=best.get('score'))
    checkpoint = best.get('checkpoint') or results.get('last_checkpoint')
    if not checkpoint:
        return dict(row, error=f'no checkpoint in {work}/results.json')
    rc, row['test'] = score_checkpoint(checkpoint, row['metric'], work)
    if rc != 0:
        row['error'] = f'test failed (exit {rc}), see {work}/suite_test.log'
    if export:
        row.update(export_int8(checkpoint, osp.join(work, 'export'), row['metric'], osp.join(work, 'suite_export.log')))
    return row


def run_tuned(config: str, entry: Dict[str, Any], options: Dict[str, Any], work: str, budget: str,
              device: str = None) -> Dict:
    """``tools/tune.py`` on the dataset within ``budget`` (for ``device``: only what fits it); the test metric of
    its trial 0 (the config as it is) and of its winner on the validation metric, each from the trial's best
    checkpoint; with ``device``, the trials refused, the largest arena trained, and the winner's int8 export."""
    opts, row = dataset_options(entry, options)
    folder = osp.join(work, 'tune')
    os.makedirs(work, exist_ok=True)
    tune = run_measured([sys.executable, osp.join(REPO, 'tools', 'tune.py'), config, '--budget', budget,
                         '--work-dir', folder, *(['--device', device] if device else []), '--cfg-options', *opts],
                        osp.join(work, 'suite_tune.log'))
    row.update(tune_seconds=tune['seconds'], tune_peak_rss_mib=tune['peak_rss_mib'])
    board_file = osp.join(folder, 'leaderboard.json')
    if tune['rc'] != 0 or not osp.isfile(board_file):
        return dict(row, error=f'tune failed (exit {tune["rc"]}), see {work}/suite_tune.log')
    return score_tune(row, board_file, work, device)


def score_tune(row: Dict[str, Any], board_file: str, work: str, device: str = None) -> Dict[str, Any]:
    """``row`` with the test metric of trial 0 and of the winner of the search in ``board_file`` (its
    ``leaderboard.json``); where trial 0 was not trained (its architecture does not fit ``device``), why."""
    board = json.load(open(board_file))
    trained = [t for t in board['trials'] if t['state'] == 'complete']
    row.update(metric=board['metric'], trials=len(board['trials']), trained=len(trained))
    if not trained:
        return dict(row, error=f'no trial finished its schedule, see {board_file}')
    default = next((t for t in trained if t['trial'] == 0), None)
    if default is None:
        first = next((t for t in board['trials'] if t['trial'] == 0), {})
        row['default_note'] = f'trial 0 (the config) {first.get("note") or "did not finish its schedule"}'
    for key, trial in (('default', default), ('tuned', trained[0])):
        if trial is None:
            continue
        found = glob.glob(osp.join(trial['work_dir'], 'best_*.pth'))  # after the loop: the winner's
        row[f'{key}_val'] = trial['value']
        row[f'{key}_test'] = score_checkpoint(found[0], board['metric'], trial['work_dir'])[1] if found else None
    row['tuned_overrides'] = trained[0]['overrides']
    if device:
        row.update(refused=sum(str(t.get('note', '')).startswith('not trained') for t in board['trials']),
                   kept_max_arena=max((t['arena'] or 0) for t in trained))
        if found:
            row['winner'] = export_int8(found[0], osp.join(work, 'winner_export'), board['metric'],
                                        osp.join(work, 'suite_export.log'), device)
    return row


def tune_table(rows: List[Dict[str, Any]]) -> str:
    lines = ['| dataset | classes | train imgs | trials (trained) | default val | default test | tuned val | '
             'tuned test | tune s | winner\'s overrides |', '|' + ' --- |' * 10]
    fmt = lambda v: f'{v:.4f}' if isinstance(v, float) else '-'  # noqa: E731
    for r in rows:
        over = ', '.join(f'{k}={v:.3g}' if isinstance(v, float) else f'{k}={v}'
                         for k, v in (r.get('tuned_overrides') or {}).items())
        lines.append(f'| {r["dataset"]} | {r["classes"]} | {r["train_images"]} | {r.get("trials", "-")} '
                     f'({r.get("trained", "-")}) | {fmt(r.get("default_val"))} | {fmt(r.get("default_test"))} | '
                     f'{fmt(r.get("tuned_val"))} | {fmt(r.get("tuned_test"))} | {r.get("tune_seconds", "-")} | {over} |'
                     + ''.join(f' {r[k]}' for k in ('error', 'default_note') if k in r))
    for r in rows:
        if 'refused' in r:
            won = r.get('winner') or {}
            lines.append(f'\n{r["dataset"]}: {r["refused"]} trials refused for the board, largest arena trained '
                         f'{r["kept_max_arena"]:,} bytes; winner\'s int8 export: arena {won.get("tflm_arena_bytes")} '
                         f'bytes, test {won.get("int8_tflm_test")}, {won.get("verdict", "no verdict")}')
    pairs = [(r['default_test'], r['tuned_test']) for r in rows
             if isinstance(r.get('default_test'), float) and isinstance(r.get('tuned_test'), float)]
    if pairs:
        better = sum(t > d for d, t in pairs)
        lines.append(f'\ntuned test above the default on {better} of {len(pairs)} datasets; mean test '
                     f'{sum(d for d, _ in pairs) / len(pairs):.4f} -> {sum(t for _, t in pairs) / len(pairs):.4f}')
    return '\n'.join(lines)


def data_imgsz(entry: Dict[str, Any]) -> int:
    """The dataset's longer image side, rounded up to a multiple of 32."""
    side = max(max(hw) for hw in entry['image_hw'])
    return -(-side // 32) * 32


def yolo_copy(entry: Dict[str, Any], out: str) -> str:
    """``data.yaml`` of the dataset in the Ultralytics layout (itself, or a copy read by sscma's readers)."""
    if entry['layout'] == 'yolo':
        return osp.join(entry['data_root'], 'data.yaml')
    import cv2
    from make_suite import write_yolo

    from sscma.datasets.detection_dataset import load_detection_split
    data = {}
    for split in ('train', 'valid', 'test'):
        _, names, records, _ = load_detection_split(entry['data_root'], split)
        data[split] = [(cv2.cvtColor(cv2.imread(r['img_path']), cv2.COLOR_BGR2RGB),
                        [(*i['bbox'], names.index(i['label'])) for i in r['instances']]) for r in records]
    write_yolo(out, data, list(names))
    return osp.join(out, 'data.yaml')


def run_peer(entry: Dict[str, Any], work: str, peer_path: str, epochs: int, imgsz: int) -> Dict[str, Any]:
    os.makedirs(work, exist_ok=True)
    data = yolo_copy(entry, osp.join(work, 'yolo'))
    env_cmd = ['env', f'PYTHONPATH={peer_path}', 'YOLO_OFFLINE=1', sys.executable,
               osp.join(REPO, 'tools', 'benchmarks', 'ultralytics_peer.py'), data, '--imgsz', str(imgsz),
               '--epochs', str(epochs), '--out', osp.join(work, 'runs')]
    run = run_measured(env_cmd, osp.join(work, 'suite_peer.log'))
    row: Dict[str, Any] = dict(dataset=entry['name'], layout=entry['layout'], classes=len(entry['classes']),
                               train_images=entry['images']['train'], imgsz=imgsz, metric='mAP50 (Ultralytics)',
                               train_seconds=run['seconds'], train_peak_rss_mib=run['peak_rss_mib'])
    lines = [line for line in open(osp.join(work, 'suite_peer.log')) if line.startswith('{')]
    if run['rc'] != 0 or not lines:
        return dict(row, error=f'peer failed (exit {run["rc"]}), see {work}/suite_peer.log')
    result = json.loads(lines[-1])
    key = 'metrics/mAP50(B)'
    row.update(val=result.get('val', {}).get(key), test=result.get('test', {}).get(key))
    return row


def table(rows: List[Dict[str, Any]]) -> str:
    cols = [('dataset', 'dataset'), ('layout', 'layout'), ('classes', 'classes'), ('train_images', 'train imgs'),
            ('val', 'best val'), ('test', 'test'), ('int8_tflm_test', 'int8 TFLM test'),
            ('tflm_arena_bytes', 'TFLM arena (KiB)'), ('train_seconds', 'train s'),
            ('train_peak_rss_mib', 'train peak RSS, process tree (MiB)')]

    def fmt(key, value):
        if value is None:
            return '-'
        if key == 'tflm_arena_bytes':
            return f'{value / 1024:.1f}'
        return f'{value:.4f}' if isinstance(value, float) and key not in ('train_seconds', ) else str(value)

    lines = ['| ' + ' | '.join(h for _, h in cols) + ' |', '|' + ' --- |' * len(cols)]
    for r in rows:
        lines.append('| ' + ' | '.join(fmt(k, r.get(k)) for k, _ in cols) + ' |' + (f' {r["error"]}' if 'error' in r
                                                                                       else ''))
    vals = [r['val'] for r in rows if isinstance(r.get('val'), float)]
    if vals:
        lines.append(f'\nmean best val over {len(vals)} datasets: {sum(vals) / len(vals):.4f}')
    return '\n'.join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='training config (file or packaged name)')
    parser.add_argument('--suite', required=True, help='folder written by make_suite.py (holds suite.json)')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, default={},
                        help='settings for every dataset, e.g. imgsz=(128,128) max_epochs=100')
    parser.add_argument('--only', nargs='+', help='these datasets only')
    parser.add_argument('--no-export', action='store_true', help='skip the int8 export and its evaluation')
    parser.add_argument('--work-dir', help='default: work_dirs/suite_<config name>')
    parser.add_argument('--data-imgsz', action='store_true',
                        help='train each dataset at its longer image side rounded up to 32 (imgsz=(S,S))')
    parser.add_argument('--peer-path', help='folder Ultralytics is installed in (CONFIG ultralytics)')
    parser.add_argument('--epochs', type=int, default=120, help='Ultralytics epochs (default 120)')
    parser.add_argument('--imgsz', type=int, help='Ultralytics input size (default: per dataset, --data-imgsz)')
    parser.add_argument('--tune', metavar='BUDGET', help='run `sscma tune CONFIG --budget BUDGET` on each dataset '
                        'and test its trial 0 (the config as it is) and its winner on the test split')
    parser.add_argument('--tune-device', metavar='BOARD', help='with --tune: `sscma tune --device BOARD` (only what '
                        'fits the board is trained); the winner is exported with --device BOARD')
    args = parser.parse_args()
    if args.tune_device and not args.tune:
        parser.error(f'--tune-device {args.tune_device} applies to a search: give --tune BUDGET as well')
    sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # make_suite's writers
    entries = json.load(open(osp.join(args.suite, 'suite.json')))
    name = osp.splitext(osp.basename(args.config))[0]
    work = args.work_dir or osp.join('work_dirs', f'suite_{name}' + ('_tune' if args.tune else ''))
    rows: List[Dict[str, Any]] = []
    text = 'no dataset run'
    for entry in entries:
        if args.only and entry['name'] not in args.only:
            continue
        if args.config == 'ultralytics':
            if not args.peer_path:
                raise SystemExit('ultralytics: give --peer-path DIR (where requirements-ultralytics.txt is installed)')
            row = run_peer(entry, osp.join(work, entry['name']), args.peer_path, args.epochs,
                           args.imgsz or data_imgsz(entry))
        else:
            options = dict(args.cfg_options)
            if args.data_imgsz:
                options['imgsz'] = (data_imgsz(entry), ) * 2
            if args.tune:
                row = run_tuned(args.config, entry, options, osp.join(work, entry['name']), args.tune,
                                args.tune_device)
            else:
                row = run_dataset(args.config, entry, options, osp.join(work, entry['name']), not args.no_export)
        rows.append(row)
        print(json.dumps(row), flush=True)
        text = tune_table(rows) if args.tune else table(rows)
        with open(osp.join(work, 'suite_results.md'), 'w') as f:
            f.write(f'`{args.config}` {json.dumps(args.cfg_options)}\n\n{text}\n')
        with open(osp.join(work, 'suite_results.json'), 'w') as f:
            json.dump(dict(config=args.config, cfg_options=args.cfg_options, rows=rows), f, indent=2)
    print(text)


if __name__ == '__main__':
    run_cli(main)
