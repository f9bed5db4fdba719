"""Keep CPU training from oversubscribing the cores it shares with its own data-loader workers."""
import os
from typing import Optional

import torch
from mmengine.hooks import Hook

from sscma.registry import HOOKS


def _cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def omp_threads_at_start() -> Optional[str]:
    """``OMP_NUM_THREADS`` as the process started with it (Linux: ``/proc/self/environ``).

    mmengine's ``Runner`` sets ``OMP_NUM_THREADS=1`` in ``os.environ`` for every distributed run before any
    hook runs, so ``os.environ`` no longer tells what the user (or torchrun) asked for.
    """
    try:
        with open('/proc/self/environ', 'rb') as f:
            for item in f.read().split(b'\0'):
                if item.startswith(b'OMP_NUM_THREADS='):
                    return item.split(b'=', 1)[1].decode() or None
        return None
    except OSError:
        return os.environ.get('OMP_NUM_THREADS')


def default_cpu_threads(num_workers: int, local_processes: int = 1, cores: Optional[int] = None) -> int:
    """Torch threads for one of ``local_processes`` training processes on this machine's ``cores``.

    Each process gets an equal share of the cores and leaves one core of its share per data-loader worker:
    ``max(1, cores // local_processes - num_workers)``.
    """
    cores = _cpu_cores() if cores is None else cores
    return max(1, cores // max(local_processes, 1) - num_workers)


@HOOKS.register_module()
class CpuThreadsHook(Hook):
    """Set torch's intra-op threads for a run on CPU.

    On a small machine, torch's OpenMP threads plus the data-loader workers oversubscribe the cores, and a
    thread waiting at an OpenMP barrier for a descheduled peer makes each step many times slower (measured
    on 2 shared cores: 0.16 s -> 3.7 s per step). The default leaves one core per worker, and under torchrun
    splits the cores between the processes of this machine (``LOCAL_WORLD_SIZE``): see
    :func:`default_cpu_threads`. Nothing is changed when the model is on a GPU or when the user set
    ``OMP_NUM_THREADS``; torchrun's own ``OMP_NUM_THREADS=1`` (set for every process when it starts several
    and the variable was unset) and mmengine's (set for any distributed run) are replaced by the share, so
    that e.g. 2 processes on 16 cores get 8 threads each instead of 1.

    Args:
        num_threads (int, optional): Threads to use; default as above.
    """
    priority = 'VERY_HIGH'

    def __init__(self, num_threads: Optional[int] = None) -> None:
        self.num_threads = num_threads

    def before_run(self, runner) -> None:
        if torch.cuda.is_available():
            return
        local_processes = int(os.environ.get('LOCAL_WORLD_SIZE', '1') or 1)
        omp = omp_threads_at_start()
        if omp and not (local_processes > 1 and omp == '1'):  # the user's choice (not torchrun's default)
            return
        threads = self.num_threads
        if threads is None:
            loader = runner.cfg.get('train_dataloader') or runner.cfg.get('test_dataloader') or {}
            workers = int(loader.get('num_workers', 0) or 0)
            threads = default_cpu_threads(workers, local_processes)
            if not getattr(runner, 'distributed', False):  # never more than torch would use by itself
                threads = min(threads, torch.get_num_threads())
        if threads != torch.get_num_threads():
            where = f' ({local_processes} processes on {_cpu_cores()} cores)' if local_processes > 1 else ''
            runner.logger.info(f'CpuThreadsHook: torch threads {torch.get_num_threads()} -> {threads}{where}')
            torch.set_num_threads(threads)
