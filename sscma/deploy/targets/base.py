"""What every export target declares, and the helpers that derive tables and loaders from the registry.

A target is one kind of file ``tools/export.py`` writes (``--targets onnx``): a class registered in
:data:`~sscma.registry.EXPORT_TARGETS` under that name. It declares its file suffix, the precisions it
offers (and why not the others), what it needs built first (vela needs the int8 TFLite), whether its
tools are installed, how to write the file from an :class:`~sscma.deploy.context.ExportContext`, how to load
the file back for evaluation (its *backend*), and the lines it adds to ``export_report.md``. The export loop,
``--targets`` checking, the report's rows, ``backend_kind`` and ``load_backend`` are derived from the
registered classes, so a new target is one module.
"""
import contextlib
import os.path as osp
import statistics
import time
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from sscma.registry import EXPORT_TARGETS
from sscma.utils import ExportError

CANONICAL_PRECISIONS = ('float32', 'float16', 'int8')


class ExportTarget:
    """Base class of export targets. Subclass it, set the attributes, implement :meth:`export` and
    :meth:`load`, and register it: ``@EXPORT_TARGETS.register_module('name')``.

    Attributes:
        name (str): The ``--targets`` name (set from the registry key).
        suffix (str): Appended to ``<checkpoint stem>_<precision>`` to name the file.
        precisions (tuple): Precisions it exports.
        unsupported_reason (str): Why the other precisions are skipped, for the report.
        requires (tuple): ``(target, precision)`` files it is built from; they are exported first (into a
            temporary folder when not requested themselves), see :meth:`ExportContext.file_of`.
        default (bool): Part of the default ``--targets``.
        runs_on_host (bool): The file runs on this machine, so it gets parity, latency and test metrics.
        runtime (str): What runs it, for the latency entry.
    """
    name: str = ''
    suffix: str = ''
    precisions: Tuple[str, ...] = ('float32', )
    unsupported_reason: str = 'not supported'
    requires: Tuple[Tuple[str, str], ...] = ()
    default: bool = True
    runs_on_host: bool = True
    runtime: str = ''

    def unavailable(self) -> Optional[str]:
        """Why this target cannot run here (a missing tool, with the line that installs it), or ``None``."""
        return None

    def file_name(self, stem: str, precision: str) -> str:
        return f'{stem}_{precision}{self.suffix}'

    def export(self, ctx, precision: str, path: str) -> Dict[str, Any]:
        """Write ``path``; return what the report should keep about it (merged into the file's entry)."""
        raise NotImplementedError

    def recognizes(self, path: str) -> int:
        """How specifically ``path`` is this target's file: the length of the matched suffix, 0 if not."""
        return len(self.suffix) if self.suffix and path.lower().endswith(self.suffix.lower()) else 0

    def write_meta(self, path: str, meta: Dict[str, Any]) -> None:
        """Store ``meta`` (class names, task, input, output layout: :mod:`sscma.deploy.model_meta`) inside the
        file just written; a target that cannot leaves the file as it is (it then carries no names)."""

    def read_meta(self, path: str) -> Optional[Dict[str, Any]]:
        """The metadata :meth:`write_meta` stored in ``path``, or ``None``."""
        return None

    def load(self, path: str, num_threads: Optional[int] = None):
        """The backend running ``path``: a callable from NCHW float32 raw pixels to the graph's output (numpy),
        with ``path`` and ``input_shape`` (NCHW, ``None`` for dynamic axes) attributes."""
        raise ExportError(f'{path}: {self.name} files cannot be run on this machine')

    def latency(self, path: str, shape: Tuple[int, int, int], runs: int) -> Dict[str, Any]:
        """Median / mean time of ``runs`` batch-1 inferences on one thread."""
        x = (np.random.default_rng(0).random((1, *shape)) * 255).astype(np.float32)
        backend = self.load(path, num_threads=1)
        with torch_threads(1):
            res = time_runs(lambda: backend(x), runs)
        res['runtime'] = self.runtime
        return res

    # ----------------------------------------------------------------------------------------- report
    def report_cells(self, entry: Dict[str, Any], columns: List[List[str]]) -> List[str]:
        """The table cells after the size: max abs diff, one per task parity column, latency."""
        p = entry.get('parity')
        lat = (entry.get('latency') or {}).get('median_ms')
        if p is None:  # a file that does not run here
            return ['-', *['-'] * len(columns), fmt(lat, 3)]
        return [f'{fmt(p["max_abs_diff"])} ({p["max_rel_diff"]:.1e})',
                *(format_measure(p.get(key), kind) for _, key, kind in columns), fmt(lat, 3)]

    def report_notes(self, entry: Dict[str, Any]) -> List[str]:
        """Paragraphs after the table (e.g. how int8 was quantised)."""
        return []

    def budget_lines(self, entry: Dict[str, Any]) -> List[str]:
        """Lines of the 'Microcontroller / NPU budget' section."""
        return []


# ------------------------------------------------------------------------------------- the registry
def target_names(defaults_only: bool = False) -> List[str]:
    """Registered targets, in registration order (the built-in ones first)."""
    EXPORT_TARGETS.import_from_location()
    return [name for name, cls in EXPORT_TARGETS.module_dict.items() if cls.default or not defaults_only]


def get_target(name: str) -> ExportTarget:
    """An instance of the target registered as ``name``."""
    EXPORT_TARGETS.import_from_location()
    cls = EXPORT_TARGETS.module_dict.get(name)
    if cls is None:
        raise ExportError(f'--targets {name}: unknown target; choose from {", ".join(target_names())}')
    target = cls()
    target.name = name
    return target


def all_precisions() -> Tuple[str, ...]:
    """Every precision some target offers, float32 / float16 / int8 first."""
    offered = [p for name in target_names() for p in get_target(name).precisions]
    return tuple(dict.fromkeys([p for p in CANONICAL_PRECISIONS if p in offered] + offered))


def target_for_file(path: str) -> Optional[ExportTarget]:
    """The target whose file ``path`` is (the most specific suffix wins), or ``None`` (e.g. a checkpoint)."""
    scored = [(target.recognizes(path), target) for target in map(get_target, target_names())]
    scored = [s for s in scored if s[0] > 0]
    return max(scored, key=lambda s: s[0])[1] if scored else None


def backend_kind(path: str) -> Optional[str]:
    """The name of the export target that wrote ``path`` (``'onnx'``, ``'torchscript'``, ``'tflite'``,
    ``'vela'`` or a registered plug-in's), ``None`` for anything else (a checkpoint)."""
    target = target_for_file(path)
    return target.name if target else None


def load_backend(path: str, num_threads: Optional[int] = None, runtime: Optional[str] = None):
    """The backend of the target that wrote ``path`` (see :meth:`ExportTarget.load`), or of the target named
    ``runtime`` when another runtime should run the file (``runtime='tflm'``: an int8 ``.tflite`` run by
    TensorFlow Lite Micro instead of LiteRT)."""
    if not osp.isfile(path):
        raise ExportError(f'exported model file not found: {path}')
    if runtime:
        return get_target(runtime).load(path, num_threads)
    target = target_for_file(path)
    if target is None:
        known = ', '.join(f'{get_target(n).suffix or n} ({n})' for n in target_names())
        raise ExportError(f'{path}: not an exported model (expected a file from tools/export.py: {known})')
    return target.load(path, num_threads)


# --------------------------------------------------------------------------------------- measuring
@contextlib.contextmanager
def torch_threads(n: int):
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def time_runs(fn, runs: int, warmup: int = 3) -> Dict[str, float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return dict(median_ms=statistics.median(times), mean_ms=statistics.fmean(times), runs=runs, threads=1,
                batch=1)


def fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return '-'
    if isinstance(value, float):
        return f'{value:.{digits}g}' if abs(value) < 1e-3 and value != 0 else f'{value:.{digits}f}'
    return str(value)


def format_measure(value: Any, kind: str) -> str:
    """A parity measure as the report shows it (``kind``: ``'percent'`` of a 0..1 ratio, or ``'number'``)."""
    if value is None:
        return '-'
    return f'{100 * value:.2f} %' if kind == 'percent' else fmt(float(value))


def size_text(n: int) -> str:
    return f'{n / 1024:.1f} KiB' if n < 1024 * 1024 else f'{n / 1024 / 1024:.2f} MiB'
