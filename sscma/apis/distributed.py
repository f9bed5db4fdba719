"""Distributed data-parallel start-up that works on CPU-only machines as well as on GPUs.

mmengine 0.10.7's ``init_dist`` calls ``torch.cuda.set_device`` unconditionally, so ``torchrun ...
--launcher pytorch`` dies with "Found no NVIDIA driver" on a machine without a GPU, and its DDP wrapper
passes ``device_ids=[LOCAL_RANK]``, which torch refuses for a model on the CPU. ``Runner.setup_env`` only
calls ``init_dist`` when no process group exists yet, so we create the group first (gloo on CPU; nccl with
one device per local rank on GPUs) and give the wrapper ``device_ids=None`` on CPU.
"""
import gc
import os
from contextlib import contextmanager
from datetime import timedelta
from typing import Optional

import torch
from mmengine.config import Config

from sscma.utils import ConfigError

LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')
TORCHRUN_VARS = ('RANK', 'LOCAL_RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')


def init_distributed(launcher: str, backend: Optional[str] = None, timeout_s: Optional[float] = None) -> None:
    """Create the default process group for ``launcher`` unless one exists.

    Args:
        launcher (str): ``'pytorch'`` (torchrun: ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``,
            ``MASTER_PORT`` in the environment), ``'slurm'`` or ``'mpi'`` (left to mmengine, GPUs only) or
            ``'none'`` (nothing to do).
        backend (str, optional): ``'gloo'``, ``'nccl'``...; default nccl when CUDA is available, else gloo.
        timeout_s (float, optional): Collective timeout in seconds (torch's default when None).

    Raises:
        ConfigError: unknown launcher, torchrun's variables missing, or slurm/mpi without a GPU.
    """
    import torch.distributed as dist
    if launcher not in LAUNCHERS:
        raise ConfigError(f'--launcher {launcher}: expected one of {", ".join(LAUNCHERS)}')
    if launcher == 'none' or (dist.is_available() and dist.is_initialized()):
        return
    if launcher in ('slurm', 'mpi'):
        if not torch.cuda.is_available():
            raise ConfigError(f'--launcher {launcher} needs a GPU (mmengine 0.10.7 selects a CUDA device per '
                              'rank); on CPU machines start torchrun on every node instead, e.g. srun torchrun '
                              '--nnodes $SLURM_NNODES --node_rank $SLURM_NODEID ... --launcher pytorch '
                              '(docs/distributed.md)')
        return  # mmengine's Runner.setup_env initialises it (nccl, one device per local rank)
    missing = [v for v in TORCHRUN_VARS if v not in os.environ]
    if missing:
        raise ConfigError(f'--launcher pytorch: {", ".join(missing)} not set; start the tool with torchrun, e.g. '
                          'torchrun --nproc_per_node 2 tools/train.py CONFIG --launcher pytorch')
    if backend is None:
        backend = 'nccl' if torch.cuda.is_available() else 'gloo'
    if backend == 'nccl':
        torch.cuda.set_device(int(os.environ['LOCAL_RANK']))
    kwargs = {'timeout': timedelta(seconds=timeout_s)} if timeout_s else {}
    dist.init_process_group(backend=backend, init_method='env://', rank=int(os.environ['RANK']),
                            world_size=int(os.environ['WORLD_SIZE']), **kwargs)


@contextmanager
def process_group_teardown():
    """Destroy the default process group when the block ends, if one was made in it.

    Garbage is collected first: the Runner's reference cycles keep the DDP wrapper alive, and its reducer holds
    the group, which ``destroy_process_group`` then cannot free; freed later, during the interpreter's exit, after
    a peer has gone, gloo aborts the process ("terminate called without an active exception"). After a run that
    finished on every rank, a barrier, so that no rank closes its connections while another still talks to it.
    After an error no barrier (the other ranks may never reach it); destroying the group still joins the
    backend's threads before exit.
    """
    import torch.distributed as dist
    finished = False
    try:
        yield
        finished = True
    finally:
        if dist.is_available() and dist.is_initialized():
            gc.collect()
            if finished:
                dist.barrier()
            dist.destroy_process_group()


def _freezes_parameters(cfg: Config) -> bool:
    """Whether a hook of ``cfg`` switches ``requires_grad`` off during training (``FreezeBackboneHook``)."""
    return any(str(h.get('type', '')).split('.')[-1] == 'FreezeBackboneHook' and h.get('freeze_epochs', 5) > 0
               for h in cfg.get('custom_hooks') or [])


def configure_distributed(cfg: Config, launcher: str) -> None:
    """Set ``cfg.launcher`` and start the process group, so that mmengine's Runner finds one.

    The backend comes from ``env_cfg.dist_cfg.backend`` when a config names one, else it follows the
    device (gloo on CPU, nccl on GPU). On CPU the DDP wrapper gets ``device_ids=None`` (mmengine would pass
    ``[LOCAL_RANK]``, which torch accepts for GPU modules only). A config that freezes parameters during
    training (``FreezeBackboneHook``) gets ``find_unused_parameters=True``, which DDP needs then.
    """
    cfg.launcher = launcher
    if launcher == 'none':
        return
    if 'find_unused_parameters' not in cfg and _freezes_parameters(cfg):
        # parameters frozen after DDP was built get no gradient: DDP must look for unused ones
        cfg.find_unused_parameters = True
    dist_cfg = dict((cfg.get('env_cfg') or {}).get('dist_cfg') or {})
    init_distributed(launcher, dist_cfg.get('backend'), dist_cfg.get('timeout'))
    if not torch.cuda.is_available():
        wrapper = dict(cfg.get('model_wrapper_cfg') or {})
        wrapper.setdefault('type', 'MMDistributedDataParallel')
        wrapper.setdefault('device_ids', None)
        wrapper.setdefault('broadcast_buffers', False)
        wrapper.setdefault('find_unused_parameters', cfg.get('find_unused_parameters', False))
        cfg.model_wrapper_cfg = wrapper
