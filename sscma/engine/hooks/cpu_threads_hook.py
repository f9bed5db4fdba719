"""Keep CPU training from oversubscribing the cores it shares with its own data-loader workers."""
import os
from typing import Optional

import torch
from mmengine.hooks import Hook

from sscma.registry import HOOKS


@HOOKS.register_module()
class CpuThreadsHook(Hook):
    """Set torch's intra-op threads for a run on CPU.

    On a small machine, torch's OpenMP threads plus the data-loader workers oversubscribe the cores, and a
    thread waiting at an OpenMP barrier for a descheduled peer makes each step many times slower (measured
    on 2 shared cores: 0.16 s -> 3.7 s per step). The default leaves one core per worker:
    ``max(1, cpu_count - num_workers)`` threads. Nothing is changed when the model is on a GPU or when
    ``OMP_NUM_THREADS`` is set.

    Args:
        num_threads (int, optional): Threads to use; default as above.
    """
    priority = 'VERY_HIGH'

    def __init__(self, num_threads: Optional[int] = None) -> None:
        self.num_threads = num_threads

    def before_run(self, runner) -> None:
        if os.environ.get('OMP_NUM_THREADS') or torch.cuda.is_available():
            return
        threads = self.num_threads
        if threads is None:
            loader = runner.cfg.get('train_dataloader') or runner.cfg.get('test_dataloader') or {}
            workers = int(loader.get('num_workers', 0) or 0)
            threads = max(1, (os.cpu_count() or 1) - workers)
        threads = min(threads, torch.get_num_threads()) if self.num_threads is None else threads
        if threads != torch.get_num_threads():
            runner.logger.info(f'CpuThreadsHook: torch threads {torch.get_num_threads()} -> {threads}')
            torch.set_num_threads(threads)
