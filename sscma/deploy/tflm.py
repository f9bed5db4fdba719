"""TensorFlow Lite Micro, the runtime microcontrollers run, driven from Python through the ``tflite-micro`` wheel.

What it answers that LiteRT on x86 cannot: the exact tensor-arena size the model needs (the recording
allocator's total, read from the C-level stderr that ``print_allocations`` writes to: there is no Python
getter), whether every op of the file exists in TFLM, and the model's outputs as the board computes them
(TFLM's reference int8 kernels, not XNNPACK's).
"""
import contextlib
import importlib.util
import os
import re
import tempfile
import threading
from typing import Dict, List, Optional, Union

import numpy as np

from sscma.utils import ExportError

TFLM_VERSION = '0.dev20261023182759'
TFLM_INSTALL = f'pip install tflite-micro=={TFLM_VERSION} (in requirements/export.txt)'
_STDERR_LOCK = threading.Lock()
_MISSING_OP = re.compile(r"Didn't find op for builtin opcode '(\w+)'")


def tflm_unavailable() -> Optional[str]:
    """Why TFLM cannot run here (the wheel is missing: Linux x86_64, CPython 3.10-3.13 only), or ``None``."""
    if importlib.util.find_spec('tflite_micro') is None:
        return f'TensorFlow Lite Micro needs the tflite-micro wheel; install it with {TFLM_INSTALL}'
    return None


@contextlib.contextmanager
def captured_c_stderr():
    """Collect what C code writes to file descriptor 2 into ``out['text']``."""
    out = {'text': ''}
    with _STDERR_LOCK, tempfile.TemporaryFile() as tmp:
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)
        try:
            yield out
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            out['text'] = tmp.read().decode(errors='replace')


def _interpreter(model: Union[str, bytes], arena_size: int, path: str = ''):
    """A TFLM interpreter for a file path or the model's bytes, with the recording allocator (the firmware's
    memory plan, plus the bookkeeping ``print_allocations`` reports; ``kPreserveAllTensors`` would keep every
    tensor and need ~2.5x the arena)."""
    from tflite_micro import runtime
    config = runtime.InterpreterConfig.kAllocationRecording
    path = path or (model if isinstance(model, str) else 'model bytes')
    with captured_c_stderr() as log:
        try:
            if isinstance(model, str):  # the keyword is misspelt upstream
                return runtime.Interpreter.from_file(model, arena_size=arena_size, intrepreter_config=config)
            return runtime.Interpreter.from_bytes(model, arena_size=arena_size, intrepreter_config=config)
        except Exception as e:  # RuntimeError from the C++ side, with the reason on stderr
            error = e
    missing = sorted(set(_MISSING_OP.findall(log['text'])))
    if missing:
        raise ExportError(f'{path}: TensorFlow Lite Micro has no kernel for {", ".join(missing)}; a firmware cannot '
                          'run this model') from None
    raise ExportError(f'{path}: TensorFlow Lite Micro cannot load it ({error}; '
                      f'{log["text"].strip().splitlines()[-1] if log["text"].strip() else "no detail"})') from None


def measure_arena(path: Union[str, bytes], upper_bytes: int = 64 << 20) -> Dict[str, int]:
    """The tensor arena TFLM allocates for ``path``: ``arena_bytes`` (what ``kTensorArenaSize`` must be at
    least, on this build: 64-bit pointers make some persistent structs larger than on a 32-bit MCU),
    ``head_bytes`` (activations, planned) and ``tail_bytes`` (persistent)."""
    unavailable = tflm_unavailable()
    if unavailable:
        raise ExportError(unavailable)
    interpreter = _interpreter(path, upper_bytes)
    details = interpreter.get_input_details(0)
    interpreter.set_input(np.zeros(details['shape'], details['dtype']), 0)
    interpreter.invoke()
    with captured_c_stderr() as log:
        interpreter.print_allocations()
    found = {k: int(v) for k, v in re.findall(r'Arena allocation (total|head|tail) (\d+) bytes', log['text'])}
    if 'total' not in found:
        raise ExportError(f'TFLM printed no arena allocation for {path if isinstance(path, str) else "the model"} '
                          f'({log["text"][-300:]!r})')
    return dict(arena_bytes=found['total'], head_bytes=found.get('head', 0), tail_bytes=found.get('tail', 0))


class TFLMBackend:
    """An int8 (or float) TFLite file run by TensorFlow Lite Micro, behind the NCHW float interface of the other
    backends (raw pixels in; outputs dequantised, 4-D ones back to NCHW). Batches run image by image.

    Args:
        model (str | bytes): The ``.tflite`` file, or the model's bytes.
        arena_size (int, optional): Tensor arena bytes; default: :func:`measure_arena` (one more
            interpreter run) plus 1 KiB.
        name (str): What to call the model in messages (default: the path).
    """

    def __init__(self, model: Union[str, bytes], arena_size: Optional[int] = None, name: str = '') -> None:
        unavailable = tflm_unavailable()
        if unavailable:
            raise ExportError(unavailable)
        self.path = name or (model if isinstance(model, str) else 'model bytes')
        arena_size = arena_size or measure_arena(model)['arena_bytes'] + 1024
        self.interpreter = _interpreter(model, arena_size, self.path)
        self.input = self.interpreter.get_input_details(0)
        self.output = self.interpreter.get_output_details(0)
        n, h, w, c = [int(v) for v in self.input['shape']]
        self.input_shape = [n, c, h, w]

    def tensor_detail(self, which: str) -> Dict:
        """``dtype``, ``shape`` (NHWC), ``scale`` and ``zero_point`` of the ``'input'`` or ``'output'`` tensor."""
        detail = self.input if which == 'input' else self.output
        scale, zero_point = self._quantization(detail)
        return dict(dtype=np.dtype(detail['dtype']).name, shape=[int(v) for v in detail['shape']], scale=scale,
                    zero_point=zero_point)

    @staticmethod
    def _quantization(detail) -> tuple:
        q = detail.get('quantization_parameters') or {}
        scales, zero_points = q.get('scales', []), q.get('zero_points', [])
        return (float(scales[0]), int(zero_points[0])) if len(scales) else (0.0, 0)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        from sscma.deploy.tflite import run_nhwc_image_by_image

        def invoke(x: np.ndarray) -> np.ndarray:
            self.interpreter.set_input(x, 0)
            self.interpreter.invoke()
            return np.array(self.interpreter.get_output(0))

        return run_nhwc_image_by_image(images, self.path, self.input['dtype'], self._quantization(self.input),
                                       self._quantization(self.output), invoke)


def tflm_ops(path: str) -> List[str]:
    """The builtin ops of a ``.tflite`` file (what a firmware's ``MicroMutableOpResolver`` registers), read with
    LiteRT's op details; :func:`measure_arena` / :class:`TFLMBackend` fail, naming them, on ops TFLM lacks."""
    from sscma.deploy.tflite import _interpreter as litert_interpreter
    return sorted({d['op_name'] for d in litert_interpreter(path, plain_ops=True)._get_ops_details()})
