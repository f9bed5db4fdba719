from .atomic_local_backend import AtomicLocalBackend
from .hooks import *  # noqa: F401,F403
from .optimizers import CpuBf16OptimWrapper

__all__ = ['AtomicLocalBackend', 'CpuBf16OptimWrapper']
