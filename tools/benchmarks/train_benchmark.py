"""Training-speed benchmark: img/s, seconds per epoch and the final metric of a config on this machine.

    python tools/benchmarks/train_benchmark.py configs/fomo/fomo_mobnetv2.py [--cfg-options max_epochs=10] [--amp]

Prints one table and writes ``benchmark.json`` in the work dir, so later changes can be compared.
"""
import argparse
import json
import os
import os.path as osp
import platform
import time

import torch
from mmengine.hooks import Hook

import sscma
from sscma.utils import CfgOptionsAction, run_cli


class EpochTimer(Hook):
    """Wall time of every training epoch and validation pass."""
    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self.train, self.val = [], []

    def before_train_epoch(self, runner) -> None:
        self._t = time.perf_counter()

    def after_train_epoch(self, runner) -> None:
        self.train.append(time.perf_counter() - self._t)

    def before_val_epoch(self, runner) -> None:
        self._v = time.perf_counter()

    def after_val_epoch(self, runner, metrics=None) -> None:
        self.val.append(time.perf_counter() - self._v)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--work-dir', default=None)
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, default={})
    parser.add_argument('--amp', action='store_true', help='mixed precision, as tools/train.py --amp')
    args = parser.parse_args()
    from mmengine.runner import Runner

    from sscma.apis import prepare_train_config
    work_dir = args.work_dir or osp.join('work_dirs', 'benchmark', osp.splitext(osp.basename(args.config))[0])
    cfg = prepare_train_config(args.config, work_dir, args.cfg_options, amp=args.amp)
    runner = Runner.from_cfg(cfg)
    timer = EpochTimer()
    runner.register_hook(timer)
    start = time.perf_counter()
    runner.train()
    total = time.perf_counter() - start
    n_train = len(runner.train_dataloader.dataset)
    results = json.load(open(osp.join(runner.work_dir, 'results.json')))
    best = results.get('best', {})
    report = dict(
        config=args.config, overrides=args.cfg_options, amp=args.amp, machine=platform.processor() or platform.machine(),
        cpu_cores=os.cpu_count(), torch_threads=torch.get_num_threads(), sscma=sscma.__version__,
        epochs=len(timer.train), train_images=n_train, total_s=round(total, 1),
        train_s_per_epoch=round(sum(timer.train) / max(len(timer.train), 1), 2),
        val_s_per_pass=round(sum(timer.val) / max(len(timer.val), 1), 2),
        train_img_per_s=round(n_train * len(timer.train) / max(sum(timer.train), 1e-9), 1),
        best_metric=best.get('metric'), best_score=best.get('score'), final_val=results.get('val'))
    with open(osp.join(runner.work_dir, 'benchmark.json'), 'w') as f:
        json.dump(report, f, indent=2)
    rows = [(k, report[k]) for k in ('config', 'cpu_cores', 'torch_threads', 'epochs', 'train_images', 'total_s',
                                     'train_s_per_epoch', 'val_s_per_pass', 'train_img_per_s', 'best_metric',
                                     'best_score')]
    width = max(len(k) for k, _ in rows)
    print('\n'.join(f'{k:<{width}}  {v}' for k, v in rows))


if __name__ == '__main__':
    run_cli(main)
