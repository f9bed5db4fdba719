"""TensorFlow Lite Micro (``--targets tflm``): the int8 TFLite as C source for a firmware, run by TFLM itself.

The file written is ``<stem>_int8_model_data.cc`` (+ ``.h``, see :mod:`sscma.deploy.c_source`), made from the
int8 TFLite. Loading it back parses the array out of the ``.cc`` and runs it with TensorFlow Lite Micro, so
the report's parity, latency and test metric are those of the bytes a board flashes, computed by the kernels
it runs; the budget line gives the exact tensor arena TFLM allocates and the ops a ``MicroMutableOpResolver``
must register, and with ``--device`` a FITS / DOES NOT FIT verdict per board.
"""
import os.path as osp
import re
from typing import Any, Dict, List, Optional

from sscma.deploy.c_source import read_c_metadata, write_c_model
from sscma.deploy.devices import DEVICES, fit_verdict, get_device
from sscma.deploy.tflm import TFLMBackend, measure_arena, tflm_unavailable, tflm_ops
from sscma.deploy.model_meta import read_zip_meta
from sscma.registry import EXPORT_TARGETS
from sscma.utils import ExportError

from .base import ExportTarget, size_text


def read_c_model(path: str) -> bytes:
    """The model bytes of a ``*_model_data.cc`` written by :func:`write_c_model`."""
    text = open(path, encoding='utf-8').read()
    body = re.search(r'_model_data\[\] = \{(.*?)\};', text, re.S)
    if body is None:
        raise ExportError(f'{path}: no model array (expected a file written by tools/export.py --targets tflm)')
    return bytes(int(v, 16) for v in re.findall(r'0x([0-9a-fA-F]{2})', body.group(1)))


@EXPORT_TARGETS.register_module('tflm')
class TFLMTarget(ExportTarget):
    """``<stem>_int8_model_data.cc/.h`` for TensorFlow Lite Micro firmware, evaluated by TFLM."""
    suffix = '_model_data.cc'
    precisions = ('int8', )
    unsupported_reason = 'microcontroller firmware runs the full-integer int8 model'
    requires = (('tflite', 'int8'), )
    runtime = 'TensorFlow Lite Micro (reference kernels)'

    def unavailable(self) -> Optional[str]:
        return tflm_unavailable()

    def export(self, ctx, precision: str, path: str) -> Dict[str, Any]:
        tflite, requested = ctx.file_of('tflite', 'int8')
        arena = measure_arena(tflite)
        ops = tflm_ops(tflite)
        backend = TFLMBackend(tflite, arena_size=arena['arena_bytes'])
        name = osp.basename(path)[:-len(self.suffix)]
        files = write_c_model(tflite, osp.dirname(path), name, arena['arena_bytes'], ops,
                              backend.tensor_detail('input'), backend.tensor_detail('output'), ctx.meta)
        info = dict(arena, ops=ops, header=files['header'], tflite=tflite if requested else None)
        devices = ctx.options.get('devices') or list(DEVICES)
        hw = ctx.shape[1:]
        flash = len(read_c_model(path))  # the array's bytes: the flatbuffer without the appended metadata
        info['devices'] = [fit_verdict(get_device(d), arena['arena_bytes'], flash, hw) for d in devices]
        return dict(tflm=info)

    def read_meta(self, path: str) -> Optional[Dict[str, Any]]:
        """The metadata in the ``.cc``'s first comment (or appended to a ``.tflite`` run with ``--runtime tflm``)."""
        if path.lower().endswith('.tflite'):
            with open(path, 'rb') as f:
                return read_zip_meta(f.read(), path)
        return read_c_metadata(path)

    def load(self, path: str, num_threads: Optional[int] = None) -> TFLMBackend:
        """TFLM on the array of a ``*_model_data.cc``, or on a ``.tflite`` file (``tools/test.py --runtime tflm``)."""
        if path.lower().endswith('.tflite'):
            return TFLMBackend(path)
        return TFLMBackend(read_c_model(path), name=path)

    def budget_lines(self, entry: Dict[str, Any]) -> List[str]:
        t = entry['tflm']
        lines = [f'- `{osp.basename(entry["file"])}` + `{osp.basename(t["header"])}` (TensorFlow Lite Micro, measured): '
                 f'tensor arena **{t["arena_bytes"]:,} bytes** ({size_text(t["arena_bytes"])}: '
                 f'{t["head_bytes"]:,} activations + {t["tail_bytes"]:,} persistent; set kTensorArenaSize to at least '
                 f'this), ops for MicroMutableOpResolver<{len(t["ops"])}>: {", ".join(t["ops"])}']
        lines += [f'  - {v["line"]}' for v in t.get('devices', [])]
        return lines
