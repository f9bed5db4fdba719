"""Keep freed tensor memory in the process for the next step instead of returning it to the OS each time."""
import ctypes
import ctypes.util
from typing import Optional

import torch
from mmengine.hooks import Hook

from sscma.registry import HOOKS

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)


def reuse_freed_heap(mmap_threshold_mb: int = 256, trim_threshold_mb: int = 512) -> Optional[bool]:
    """Tell glibc's allocator to serve blocks up to ``mmap_threshold_mb`` from its heap and to keep up to
    ``trim_threshold_mb`` of freed memory at the heap's top: each training step's activations and gradients
    (a few MB each) then reuse pages already mapped instead of faulting in fresh zeroed ones. Returns
    True when set, False when glibc refused, None without glibc (macOS, musl: nothing to do).

    On the default FOMO on 2 cores: 500-950 minor page faults per iteration -> 0-46; the compute ceiling
    318-334 -> 340-378 img/s and the loop 259-279 -> 290-318 img/s, peak resident memory unchanged
    (docs/benchmarks.md)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return None
    return bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold_mb << 20)) and bool(
        mallopt(_M_TRIM_THRESHOLD, trim_threshold_mb << 20))


@HOOKS.register_module()
class HeapReuseHook(Hook):
    """:func:`reuse_freed_heap` for a run on CPU (on a GPU, torch's caching allocator already reuses device
    memory). Data-loader workers forked later inherit the setting.

    Args:
        mmap_threshold_mb (int): Largest block served from the heap, MiB. Defaults to 256.
        trim_threshold_mb (int): Freed memory kept at the heap's top, MiB. Defaults to 512.
    """
    priority = 'VERY_HIGH'

    def __init__(self, mmap_threshold_mb: int = 256, trim_threshold_mb: int = 512) -> None:
        self.mmap_threshold_mb, self.trim_threshold_mb = mmap_threshold_mb, trim_threshold_mb

    def before_run(self, runner) -> None:
        if torch.cuda.is_available():
            return
        if reuse_freed_heap(self.mmap_threshold_mb, self.trim_threshold_mb) is False:
            runner.logger.warning('HeapReuseHook: glibc refused mallopt; freed tensor memory goes back to the OS '
                                  'at each step (slower, not wrong)')
