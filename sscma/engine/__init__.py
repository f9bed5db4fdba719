from .atomic_local_backend import AtomicLocalBackend
from .hooks import *  # noqa: F401,F403

__all__ = ['AtomicLocalBackend']
