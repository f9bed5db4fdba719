"""TFLite (``--targets tflite``): float32 / float16 / full-integer int8 files for microcontrollers.

The batch-1 ONNX graph goes through onnx2tf (NCHW becomes NHWC) to a TensorFlow SavedModel, shared by every
TFLite precision of the run, then ``tf.lite.TFLiteConverter`` writes each file (see :mod:`sscma.deploy.tflite`).
"""
import importlib.util
import os.path as osp
from typing import Any, Dict, List, Optional

from sscma.deploy.tflite import INSTALL_HINT, TFLiteBackend, export_tflite, onnx_to_saved_model
from sscma.deploy.model_meta import append_zip_meta, read_zip_meta, strip_zip_meta
from sscma.registry import EXPORT_TARGETS

from .base import ExportTarget, fmt, size_text
from .onnx import export_onnx_fp32


@EXPORT_TARGETS.register_module('tflite')
class TFLiteTarget(ExportTarget):
    """TFLite files; int8 is full-integer (int8 input and output, a device feeds ``pixel - 128``)."""
    suffix = '.tflite'
    precisions = ('float32', 'float16', 'int8')
    runtime = 'LiteRT interpreter (XNNPACK)'

    def unavailable(self) -> Optional[str]:
        missing = [m for m in ('tensorflow', 'onnx2tf') if importlib.util.find_spec(m) is None]
        return f'TFLite export needs {" and ".join(missing)}; install it with {INSTALL_HINT}' if missing else None

    def export(self, ctx, precision: str, path: str) -> Dict[str, Any]:
        calib = ctx.calibration() if precision == 'int8' else []  # first: onnx2tf checks on these images
        nhwc = [c.permute(0, 2, 3, 1).numpy() for c in calib]
        return dict(tflite=export_tflite(saved_model(ctx), path, precision, nhwc))

    def load(self, path: str, num_threads: Optional[int] = None) -> TFLiteBackend:
        return TFLiteBackend(path, num_threads)

    def write_meta(self, path: str, meta: Dict[str, Any]) -> None:
        append_zip_meta(path, meta)

    def read_meta(self, path: str) -> Optional[Dict[str, Any]]:
        with open(path, 'rb') as f:
            return read_zip_meta(f.read(), path)

    def budget_lines(self, entry: Dict[str, Any]) -> List[str]:
        if entry['precision'] != 'int8':
            return []
        t = entry['tflite']
        with open(entry['file'], 'rb') as f:
            flash = len(strip_zip_meta(f.read()))
        return [f'- `{osp.basename(entry["file"])}` (TFLite Micro): flash {size_text(flash)} (the flatbuffer; the '
                f'metadata appended to the file stays off the board), peak activation RAM {size_text(t["peak_activation_bytes"])} (largest set of live '
                f'tensors; a tensor arena needs this plus alignment), input {t["input"]["dtype"]} scale '
                f'{fmt(t["input"]["scale"])} zero point {t["input"]["zero_point"]}, ops: {", ".join(t["ops"])}']


def saved_model(ctx) -> str:
    """The run's TensorFlow SavedModel (onnx2tf of the batch-1 float32 ONNX graph), converted once."""
    def build() -> str:
        static_onnx = ctx.tmp_path(f'{ctx.stem}_float32_batch1.onnx')
        export_onnx_fp32(ctx.wrapper, ctx.shape, static_onnx, dynamic_batch=False)
        sample = ctx.sample_batch().permute(0, 2, 3, 1).numpy()
        return onnx_to_saved_model(static_onnx, ctx.tmp_path('saved_model'), sample)

    return ctx.artifact('tflite.saved_model', build)
