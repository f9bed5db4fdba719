"""Process-wide set-up: registries, default scope and safe checkpoint loading on torch >= 2.6."""
import datetime
import os
import pickle
import warnings

import numpy as np
import torch
from mmengine import DefaultScope


def _history_buffer_getattr(obj, name: str):
    """Stand-in for ``getattr`` in checkpoints: only ``HistoryBuffer``'s statistics methods resolve.

    mmengine pickles ``HistoryBuffer.statistics_methods`` as ``getattr(HistoryBuffer, 'min')`` etc.;
    allowing the real ``getattr`` would let a checkpoint reach any attribute of any allowed object.
    """
    from mmengine.logging.history_buffer import HistoryBuffer
    if obj is HistoryBuffer and name in {'min', 'max', 'current', 'mean', *HistoryBuffer._statistics_methods}:
        return getattr(obj, name)
    raise pickle.UnpicklingError(f'checkpoint asks for getattr({obj!r}, {name!r}), which is not allowed')


def allow_checkpoint_globals() -> None:
    """Allow-list the non-tensor types that mmengine checkpoints contain.

    torch >= 2.6 loads with ``weights_only=True`` by default and mmengine 0.10.7 calls ``torch.load``
    without the argument, so resuming fails on the message hub's ``HistoryBuffer`` and numpy scalars. We
    allow exactly those types instead of turning the safe loader off.
    """
    from mmengine.config.config import ConfigDict
    from mmengine.logging.history_buffer import HistoryBuffer

    safe = [HistoryBuffer, ConfigDict, np.ndarray, np.dtype, np.core.multiarray._reconstruct,
            np.core.multiarray.scalar, datetime.datetime, datetime.date, datetime.timedelta]
    safe += [type(np.dtype(t)) for t in (np.float16, np.float32, np.float64, np.int8, np.int16, np.int32,
                                         np.int64, np.uint8, np.bool_)]
    safe += [(_history_buffer_getattr, '__builtin__.getattr'), (_history_buffer_getattr, 'builtins.getattr')]
    torch.serialization.add_safe_globals(safe)


def cpu_cores() -> int:
    """Cores this process may run on (its affinity mask on Linux, else ``os.cpu_count()``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def local_processes() -> int:
    """Training processes on this machine: torchrun's ``LOCAL_WORLD_SIZE``, 1 without it."""
    return max(int(os.environ.get('LOCAL_WORLD_SIZE', '1') or 1), 1)


def register_all_modules(init_default_scope: bool = True) -> None:
    """Import every sscma module that registers components, and make ``sscma`` the default scope.

    The modules are the ``locations`` of the registries in :mod:`sscma.registry` (``sscma.models``,
    ``sscma.datasets`` ...), imported as mmengine would import them lazily on a first lookup; naming them
    there, not here, keeps ``sscma.utils`` below every other subpackage (no import cycle).
    """
    import importlib

    from sscma import registry
    locations = dict.fromkeys(loc for name in registry.__all__ for loc in getattr(registry, name)._locations)
    for location in locations:  # imported directly: mmengine's import_from_location would create its logger
        importlib.import_module(location)

    allow_checkpoint_globals()
    if init_default_scope:
        never_created = DefaultScope.get_current_instance() is None or not DefaultScope.check_instance_created(
            'sscma')
        if never_created:
            DefaultScope.get_instance('sscma', scope_name='sscma')
            return
        current = DefaultScope.get_current_instance()
        if current.scope_name != 'sscma':
            warnings.warn(f'The current default scope "{current.scope_name}" is not "sscma"; '
                          '`register_all_modules` forces it to "sscma".')
            name = f'sscma-{datetime.datetime.now()}'
            DefaultScope.get_instance(name, scope_name='sscma')
