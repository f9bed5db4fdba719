"""Training throughput of a config, in one process: compute ceiling, data loader alone, and the real loop.

    python tools/benchmarks/throughput.py configs/fomo/fomo_mobnetv2.py [--epochs 6] [--cfg-options ...]

- **ceiling**: forward + backward + optimizer step of the config's model on batches already loaded and
  preprocessed, at 1 torch thread and at torch's default (every core); the faster of the two is the most
  the loop could do. Measured before and after the loop (the median of both sets of blocks), since a
  shared VM's speed drifts by tens of percent within a minute.
- **data**: the config's train dataloader alone (its workers, its pipeline), epochs after the first.
- **loop**: mmengine's ``runner.train()`` as ``tools/train.py`` runs it; img/s of the training epochs after
  the first (workers start and caches fill in epoch 1), validation excluded. Also the whole run's wall time
  (probes excluded) and the process's peak resident memory. Within the loop's own iterations (epochs after
  the first): the time in the data preprocessor (normalisation and batch augmentations), between steps, and
  ``loop_compute_share``, the part of each iteration spent in forward + backward + step (immune to the drift
  between the separate measurements).
- **adjacent ceiling**: a short ceiling probe (20 steps at the thread count that was faster before the loop)
  before every training epoch and after the last; ``loop_over_adjacent_ceiling`` is the median, over the
  epochs after the first, of the epoch's img/s over the mean of the probes on either side of it. The VM's speed
  drifts within a minute, so this pairs each epoch with a ceiling measured seconds from it.
  ``loop_compute_over_adjacent_ceiling``: the same for the epoch's forward + backward + step alone (below 1:
  the model itself runs slower inside the loop than on the probe's ready batches).

Prints img/s and the loop / ceiling ratio, and writes ``throughput.json`` in the work dir.
"""
import argparse
import json
import os
import os.path as osp
import resource
import statistics
import time
from typing import Tuple

import torch
from mmengine.hooks import Hook

from sscma.utils import CfgOptionsAction, run_cli


class TrainEpochTimer(Hook):
    """Wall time and sample count of every training epoch; per iteration, the time in the step (``train_step``
    and the hooks before it) and between steps (the other hooks after it, and waiting for the next batch)."""
    priority = 'VERY_HIGH'

    def __init__(self, probe=None) -> None:
        self.epochs, self.step, self.between, self.preprocess, self.compute = [], [], [], [], []
        self.probe, self.probes, self.probe_s = probe, [], 0.0  # probe(): the ceiling's img/s now
        self.starts = []  # per epoch: where its iterations start in step, preprocess, between

    def before_train(self, runner) -> None:
        preprocessor = runner.model.data_preprocessor

        def start(module, args):
            self._pre_start = time.perf_counter()

        def stop(module, args, output):
            if module.training:
                self.preprocess.append(time.perf_counter() - self._pre_start)

        preprocessor.register_forward_pre_hook(start)
        preprocessor.register_forward_hook(stop)

    def before_train_epoch(self, runner) -> None:
        self.run_probe()
        self.starts.append((len(self.step), len(self.preprocess), len(self.between)))
        self._t, self._n, self._last = time.perf_counter(), 0, None

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        self._start = time.perf_counter()
        if self._last is not None:
            self.between.append(self._start - self._last)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self._last = time.perf_counter()
        self.step.append(self._last - self._start)
        self._n += len(data_batch['inputs'])

    def after_train_epoch(self, runner) -> None:
        self.epochs.append((time.perf_counter() - self._t, self._n))
        done = sum(len(c) for c in self.compute)  # this epoch's forward + backward + step times
        self.compute.append([s - p for s, p in zip(self.step[done:], self.preprocess[done:])])

    def after_train(self, runner) -> None:
        self.run_probe()

    def run_probe(self) -> None:
        """One ceiling probe, its time kept out of the loop's (``probe_s``)."""
        if self.probe is not None:
            start = time.perf_counter()
            self.probes.append(self.probe())
            self.probe_s += time.perf_counter() - start

    def steady(self) -> Tuple[list, list, list]:
        """The step, preprocess and between times of the epochs after the first (the first fills the caches
        and starts the workers: its data waits are 10 ms where later ones are 2)."""
        if len(self.starts) < 2:
            return self.step, self.preprocess, self.between
        s, p, b = self.starts[1]
        return self.step[s:], self.preprocess[p:], self.between[b:]

    def adjacent_ratios(self) -> Tuple[list, list]:
        """Per epoch after the first, over the mean of the ceiling probes either side of it: the epoch's img/s,
        and the img/s of its forward + backward + step alone."""
        loop, compute = [], []
        for k in range(1, min(len(self.epochs), len(self.probes) - 1)):
            ceiling = (self.probes[k] + self.probes[k + 1]) / 2
            (seconds, n), steps = self.epochs[k], self.compute[k]
            loop.append(n / seconds / ceiling)
            compute.append(n / max(sum(steps), 1e-9) / ceiling)
        return loop, compute


def steady_rate(epochs) -> float:
    """img/s over all epochs but the first (or the only one)."""
    rest = epochs[1:] or epochs
    return sum(n for _, n in rest) / max(sum(t for t, _ in rest), 1e-9)


def measure_data(cfg, epochs: int = 3) -> float:
    """img/s of the config's train dataloader alone, epochs after the first."""
    from mmengine.runner import Runner
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
    times = []
    for _ in range(epochs):
        start, n = time.perf_counter(), 0
        for batch in loader:
            n += len(batch['inputs'])
        times.append((time.perf_counter() - start, n))
    del loader
    return steady_rate(times)


def ceiling_step(cfg):
    """``(step, batch size)``: ``step(k)`` runs forward + backward + optimizer step of the config's model on the
    ``k``-th of 8 batches loaded and preprocessed once."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.runner import Runner

    from sscma.registry import MODELS
    loader = Runner.build_dataloader(dict(cfg.train_dataloader, num_workers=0, persistent_workers=False), seed=0)
    model = MODELS.build(cfg.model)
    model.train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    batches = []
    for k, batch in enumerate(loader):
        batches.append(model.data_preprocessor(batch, True))
        if k == 7:
            break

    def step(k):
        data = batches[k % len(batches)]
        losses = model(**data, mode='loss')
        loss, _ = model.parse_losses(losses)
        optim_wrapper.update_params(loss)

    return step, len(batches[0]['inputs'])


def measure_ceiling(step, batch_size: int, threads: int, iters: int = 20, blocks: int = 5,
                    warmup: int = 5) -> list:
    """img/s of ``step`` (see :func:`ceiling_step`) with ``threads`` torch threads, for each of ``blocks``
    blocks of ``iters`` steps."""
    default = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for k in range(warmup):
            step(k)
        elapsed = []
        for _ in range(blocks):  # the median block: 2 threads on a shared VM vary by +-30 % between blocks
            start = time.perf_counter()
            for k in range(iters):
                step(k)
            elapsed.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(default)
    return [iters * batch_size / t for t in elapsed]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--work-dir', default=None)
    parser.add_argument('--epochs', type=int, default=6, help='training epochs of the loop measurement')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, default={})
    args = parser.parse_args()
    from mmengine.runner import Runner

    from sscma.apis import prepare_train_config
    from sscma.engine.hooks import reuse_freed_heap
    reuse_freed_heap()  # what the loop's HeapReuseHook sets, for the ceiling measured before the loop too
    name = osp.splitext(osp.basename(args.config))[0]
    work_dir = args.work_dir or osp.join('work_dirs', 'throughput', name)
    cfg = prepare_train_config(args.config, work_dir, dict(args.cfg_options, max_epochs=args.epochs))
    default_threads = torch.get_num_threads()
    step, batch_size = ceiling_step(cfg)
    blocks = {n: measure_ceiling(step, batch_size, n) for n in sorted({1, default_threads})}
    data = measure_data(cfg)
    runner = Runner.from_cfg(cfg)

    best_before = max(blocks, key=lambda n: statistics.median(blocks[n]))

    def probe():  # at the thread count that was faster before the loop
        loop_threads = torch.get_num_threads()
        try:
            return measure_ceiling(step, batch_size, best_before, iters=20, blocks=1, warmup=3)[0]
        finally:
            torch.set_num_threads(loop_threads)

    timer = TrainEpochTimer(probe)
    runner.register_hook(timer)
    start = time.perf_counter()
    runner.train()
    wall = time.perf_counter() - start - timer.probe_s
    torch.set_num_threads(default_threads)  # the loop's CpuThreadsHook may have changed it
    for n in blocks:
        blocks[n] += measure_ceiling(step, batch_size, n)
    by_threads = {n: statistics.median(v) for n, v in blocks.items()}
    ceiling_threads = max(by_threads, key=by_threads.get)
    ceiling = by_threads[ceiling_threads]
    loop = steady_rate(timer.epochs)
    adjacent, adjacent_compute = timer.adjacent_ratios()
    steps, preprocesses, betweens = timer.steady()
    step_ms = 1000 * statistics.mean(steps)
    between_ms = 1000 * statistics.mean(betweens) if betweens else 0.0
    preprocess_ms = 1000 * statistics.mean(preprocesses) if preprocesses else 0.0
    report = dict(
        config=args.config, overrides=args.cfg_options, cpu_cores=os.cpu_count(),
        ceiling_by_threads={n: round(v, 1) for n, v in by_threads.items()}, ceiling_threads=ceiling_threads,
        ceiling_blocks_before_after={n: [round(b) for b in v] for n, v in blocks.items()},
        loop_threads=torch.get_num_threads(), num_workers=cfg.train_dataloader.get('num_workers', 0),
        ceiling_img_per_s=round(ceiling, 1), data_img_per_s=round(data, 1), loop_img_per_s=round(loop, 1),
        loop_over_ceiling=round(loop / ceiling, 3),
        loop_over_adjacent_ceiling=round(statistics.median(adjacent), 3) if adjacent else None,  # < 3 epochs
        adjacent_ratios=[round(r, 3) for r in adjacent],
        loop_compute_over_adjacent_ceiling=[round(r, 3) for r in adjacent_compute],
        probe_threads=best_before, probes=[round(v) for v in timer.probes], epochs=args.epochs,
        train_wall_s=round(wall, 1),
        epoch_s=[round(t, 2) for t, _ in timer.epochs],
        step_ms=round(step_ms, 1), preprocess_ms=round(preprocess_ms, 1), between_steps_ms=round(between_ms, 1),
        median_step_preprocess_between_ms=[round(1000 * statistics.median(v), 1) if v else None
                                           for v in (steps, preprocesses, betweens)],
        loop_compute_share=round((step_ms - preprocess_ms) / (step_ms + between_ms), 3),
        val_and_checkpoint_s_per_epoch=round((wall - sum(t for t, _ in timer.epochs)) / max(len(timer.epochs), 1), 2),
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        peak_worker_rss_mb=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)
    with open(osp.join(runner.work_dir, 'throughput.json'), 'w') as f:
        json.dump(report, f, indent=2)
    width = max(len(k) for k in report)
    print('\n'.join(f'{k:<{width}}  {v}' for k, v in report.items()))


if __name__ == '__main__':
    run_cli(main)
