"""Keep CPU training from oversubscribing the cores it shares with its own data-loader workers."""
import os
import time
from typing import Optional

import torch
from mmengine.hooks import Hook

from sscma.registry import HOOKS
from sscma.utils.setup_env import cpu_cores as _cpu_cores
from sscma.utils.setup_env import local_processes as _local_processes


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


def busy_cores(interval: float = 0.25) -> float:
    """Cores in use by other processes, from ``/proc/stat`` over ``interval`` seconds while this one sleeps
    (0 where ``/proc/stat`` cannot be read)."""
    def sample():
        with open('/proc/stat', encoding='ascii') as f:
            fields = [float(v) for v in f.readline().split()[1:]]
        return sum(fields), fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # total, idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(interval)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return 0.0
    elapsed = total1 - total0
    return 0.0 if elapsed <= 0 else os.cpu_count() * (1.0 - (idle1 - idle0) / elapsed)


def default_cpu_threads(num_workers: int, local_processes: int = 1, cores: Optional[int] = None,
                        busy: float = 0.0) -> int:
    """Torch threads for one of ``local_processes`` training processes on this machine's ``cores``.

    Each process gets an equal share of the cores, leaves one core of its share per data-loader worker, and
    one per core in use by other processes (``busy``, rounded):
    ``max(1, cores // local_processes - num_workers - round(busy / local_processes))``.
    """
    cores = _cpu_cores() if cores is None else cores
    local_processes = max(local_processes, 1)
    return max(1, cores // local_processes - num_workers - int(round(busy / local_processes)))


@HOOKS.register_module()
class CpuThreadsHook(Hook):
    """Set torch's intra-op threads for a run on CPU.

    On a small machine, torch's OpenMP threads plus the data-loader workers oversubscribe the cores, and a
    thread waiting at an OpenMP barrier for a descheduled peer makes each step many times slower. On 2 cores:
    a small model's step 0.16 s -> 3.7 s with 2 torch threads + 2 workers; RTMDet-nano 96 a batch of 16 in
    1.5-1.9 s with 2 threads + 2 workers, 0.35 s with the threads set here; an RTMDet-nano step beside another
    training 7.2 s with 2 threads, 0.27 s with 1 (docs/benchmarks.md). The default leaves one core per worker
    and one per core in use by other processes when the run starts (:func:`busy_cores`, 0.25 s of
    ``/proc/stat``), and under torchrun splits the cores between the processes of this machine
    (``LOCAL_WORLD_SIZE``): see :func:`default_cpu_threads`. Nothing is changed when the model is on a GPU or
    when the user set ``OMP_NUM_THREADS``; torchrun's own ``OMP_NUM_THREADS=1`` (set for every process when
    it starts several and the variable was unset) and mmengine's (set for any distributed run) are replaced
    by the share, so that e.g. 2 processes on 16 cores get 8 threads each instead of 1.

    Args:
        num_threads (int, optional): Threads to use; default as above.
    """
    priority = 'VERY_HIGH'

    def __init__(self, num_threads: Optional[int] = None) -> None:
        self.num_threads = num_threads

    def before_run(self, runner) -> None:
        if torch.cuda.is_available():
            return
        local_processes = _local_processes()
        omp = omp_threads_at_start()
        if omp and not (local_processes > 1 and omp == '1'):  # the user's choice (not torchrun's default)
            return
        threads = self.num_threads
        if threads is None:
            loader = runner.cfg.get('train_dataloader') or runner.cfg.get('test_dataloader') or {}
            workers = int(loader.get('num_workers', 0) or 0)
            threads = default_cpu_threads(workers, local_processes)
            if threads > 1:  # only then can other processes' load lower it: sample it
                threads = default_cpu_threads(workers, local_processes, busy=busy_cores())
            if not getattr(runner, 'distributed', False):  # never more than torch would use by itself
                threads = min(threads, torch.get_num_threads())
        if threads != torch.get_num_threads():
            where = f' ({local_processes} processes on {_cpu_cores()} cores)' if local_processes > 1 else ''
            runner.logger.info(f'CpuThreadsHook: torch threads {torch.get_num_threads()} -> {threads}{where} '
                               '(set OMP_NUM_THREADS to choose)')
            torch.set_num_threads(threads)
