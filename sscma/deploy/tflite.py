"""The TFLite tool chain for microcontrollers and Ethos-U NPUs: ONNX -> TensorFlow (onnx2tf) -> TFLite.

The float ONNX graph (batch 1, shapes folded by onnxsim) is converted to a TensorFlow SavedModel by onnx2tf,
which also turns NCHW into NHWC. ``tf.lite.TFLiteConverter`` then writes float32 or full-integer int8
TFLite, the latter calibrated on the same training images as the ppq int8 ONNX, with int8 input and output
(input scale ~1, zero point -128: a camera's uint8 pixel minus 128). vela (``ethos-u-vela``) compiles the
int8 file for an Ethos-U NPU (:mod:`sscma.deploy.targets.vela`).

These tools come from ``requirements/export.txt`` (tensorflow-cpu, onnx2tf, ai-edge-litert, ethos-u-vela).
"""
import contextlib
import io
import os.path as osp
import re
import shutil
import tempfile
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from sscma.utils import ExportError
from sscma.utils.optional_imports import import_tensorflow

INSTALL_HINT = ('pip install -r requirements/export.txt (tensorflow-cpu, onnx2tf, tf_keras, onnx-graphsurgeon, '
                'sng4onnx, ai-edge-litert, ethos-u-vela)')


def _import_tensorflow():
    return import_tensorflow(ExportError, f'TFLite export needs TensorFlow; install it with {INSTALL_HINT}')


def _interpreter(path: str, num_threads: Optional[int] = None, plain_ops: bool = False):
    """A LiteRT interpreter; ``plain_ops`` keeps the op graph as in the file (no XNNPACK delegate)."""
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError as e:
        raise ExportError(f'running {path} needs the LiteRT interpreter ({e}); install it with {INSTALL_HINT}') \
            from None
    try:
        resolver = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES if plain_ops else OpResolverType.AUTO
        interpreter = Interpreter(model_path=path, num_threads=num_threads, experimental_op_resolver_type=resolver)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        if 'ethos-u' in str(e):
            raise ExportError(f'{path} was compiled by vela for an Ethos-U NPU and runs only there; evaluate the '
                              'int8 .tflite it was compiled from instead') from None
        raise ExportError(f'{path}: the TFLite interpreter cannot load this model: {str(e).splitlines()[0]}') \
            from None
    return interpreter


# onnx2tf runs a sample image batch through the ONNX graph to check its conversion; it downloads one unless
# this file is in the working directory. We write our own images there instead (no network needed).
ONNX2TF_SAMPLE_FILE = 'calibration_image_sample_data_20x128x128x3_float32.npy'


def onnx_to_saved_model(onnx_path: str, out_dir: str, sample_nhwc: np.ndarray) -> str:
    """onnx2tf conversion of a static-shape ONNX graph; returns the SavedModel folder.

    ``sample_nhwc`` (N, H, W, C raw pixels) feeds onnx2tf's own conversion checks.
    """
    _import_tensorflow()
    try:
        import onnx2tf
    except ImportError as e:
        raise ExportError(f'TFLite export needs onnx2tf ({e}); install it with {INSTALL_HINT}') from None
    onnx_path, out_dir = osp.abspath(onnx_path), osp.abspath(out_dir)
    work = tempfile.mkdtemp(prefix='sscma_onnx2tf_')
    samples = np.resize(sample_nhwc.astype(np.float32) / 255.0, (20, *sample_nhwc.shape[1:]))
    if samples.shape[-1] == 3:  # onnx2tf reads 128x128x3 images and resizes them to the input
        import cv2
        samples = np.stack([cv2.resize(img, (128, 128)) for img in samples])
    np.save(osp.join(work, ONNX2TF_SAMPLE_FILE), samples)
    log = io.StringIO()
    try:
        with contextlib.chdir(work), contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            onnx2tf.convert(input_onnx_file_path=onnx_path, output_folder_path=out_dir, non_verbose=True,
                            output_signaturedefs=True, not_use_onnxsim=True)
    except BaseException as e:  # onnx2tf calls sys.exit() on ops it cannot convert
        if isinstance(e, KeyboardInterrupt):
            raise
        ops = sorted(set(re.findall(r"onnx_op_type: (\w+)", log.getvalue())))[-3:]
        raise ExportError(f'onnx2tf cannot convert {osp.basename(onnx_path)} to TensorFlow '
                          f'({type(e).__name__}: {e}){" near ops " + ", ".join(ops) if ops else ""}; '
                          f'last output: {log.getvalue()[-800:]}') from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out_dir


def export_tflite(saved_model: str, path: str, precision: str,
                  calib_nhwc: Sequence[np.ndarray] = ()) -> Dict[str, Any]:
    """Write a float32 / float16 TFLite file, or a full-integer int8 one calibrated on ``calib_nhwc``
    (float NHWC batches of raw pixels)."""
    tf = _import_tensorflow()
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
    info: Dict[str, Any] = dict(converter=f'onnx2tf + tf.lite.TFLiteConverter (TensorFlow {tf.__version__})')
    if precision == 'float16':
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif precision == 'int8':
        if not len(calib_nhwc):
            raise ExportError('int8 TFLite needs calibration images')
        images = [img[None] for batch in calib_nhwc for img in batch.astype(np.float32)]

        def representative_dataset():
            for img in images:
                yield [img]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
        info.update(calibration_images=len(images), weights='int8 symmetric per-channel (TFLite default)',
                    activations='int8 asymmetric per-tensor (min/max over the calibration images)',
                    io='int8 input and output')
    elif precision != 'float32':
        raise ExportError(f'TFLite precision {precision!r} is not one of float32, float16, int8')
    log = io.StringIO()
    try:
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            flatbuffer = converter.convert()
    except Exception as e:
        raise ExportError(f'TFLite conversion ({precision}) failed: {str(e).strip().splitlines()[-1]} '
                          '(an op the TFLite builtin int8 kernels cannot take?)') from None
    with open(path, 'wb') as f:
        f.write(flatbuffer)
    interpreter = _interpreter(path, plain_ops=True)
    info['ops'] = sorted({d['op_name'] for d in interpreter._get_ops_details()})
    for key, detail in (('input', interpreter.get_input_details()[0]), ('output', interpreter.get_output_details()[0])):
        scale, zero_point = detail['quantization']
        info[key] = dict(shape=detail['shape'].tolist(), dtype=np.dtype(detail['dtype']).name,
                         scale=float(scale) if scale else None, zero_point=int(zero_point) if scale else None)
    info['peak_activation_bytes'] = peak_activation_bytes(interpreter)
    return info


def peak_activation_bytes(interpreter) -> int:
    """The largest sum of live intermediate tensors over the op sequence: the smallest tensor arena an MCU
    runtime (TFLite Micro) could work in, before alignment and fragmentation."""
    ops = interpreter._get_ops_details()
    tensors = {t['index']: t for t in interpreter.get_tensor_details()}
    produced = {o for op in ops for o in op['outputs']}
    graph_inputs = {d['index'] for d in interpreter.get_input_details()}
    activations = produced | graph_inputs
    last_use = {}
    for i, op in enumerate(ops):
        for t in op['inputs']:
            if t in activations:
                last_use[t] = i
    for d in interpreter.get_output_details():
        last_use[d['index']] = len(ops)
    first_def = {t: -1 for t in graph_inputs}
    for i, op in enumerate(ops):
        for t in op['outputs']:
            first_def.setdefault(t, i)

    def nbytes(t: int) -> int:
        detail = tensors.get(t)
        if detail is None:
            return 0
        return int(np.prod(detail['shape'])) * np.dtype(detail['dtype']).itemsize

    peak = 0
    for i in range(len(ops)):
        live = [t for t in activations if first_def.get(t, len(ops)) <= i <= last_use.get(t, first_def.get(t, -1))]
        peak = max(peak, sum(nbytes(t) for t in live))
    return peak


def run_nhwc_image_by_image(images: np.ndarray, path: str, input_dtype, input_quant: Tuple[float, int],
                            output_quant: Tuple[float, int], invoke) -> np.ndarray:
    """Run a batch-1 NHWC TFLite model (``invoke(x) -> output``) on NCHW raw-pixel ``images``, image by image.

    Inputs are quantised with ``input_quant`` (scale, zero point) for integer models, outputs dequantised with
    ``output_quant``, and 4-D outputs returned as NCHW. Shared by the LiteRT and TensorFlow Lite Micro backends.
    """
    if images.ndim != 4:
        raise ExportError(f'{path} takes NCHW image batches, got shape {images.shape}')
    scale, zero_point = input_quant
    out_scale, out_zero_point = output_quant
    outs: List[np.ndarray] = []
    for img in np.transpose(images, (0, 2, 3, 1)):
        x = img[None].astype(np.float32)
        if np.issubdtype(input_dtype, np.integer):
            info = np.iinfo(input_dtype)
            x = np.clip(np.rint(x / scale) + zero_point, info.min, info.max)
        out = np.asarray(invoke(x.astype(input_dtype)))
        if np.issubdtype(out.dtype, np.integer) and out_scale:
            out = (out.astype(np.float32) - out_zero_point) * out_scale
        outs.append(out.astype(np.float32))
    out = np.concatenate(outs)
    return np.transpose(out, (0, 3, 1, 2)) if out.ndim == 4 else out


class TFLiteBackend:
    """A TFLite model behind the NCHW float interface of the other backends.

    Input batches (raw pixels, NCHW) are transposed to the file's NHWC layout and quantised with its input
    scale / zero point when it is an int8 model; outputs are dequantised and 4-D ones transposed back to NCHW.
    The files have batch 1: batches run image by image.
    """

    def __init__(self, path: str, num_threads: Optional[int] = None) -> None:
        self.path = path
        self.interpreter = _interpreter(path, num_threads)
        inputs, outputs = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        if len(inputs) != 1:
            raise ExportError(f'{path}: expected a model with one image input, it has {len(inputs)}')
        self.input, self.output = inputs[0], outputs[0]
        n, h, w, c = self.input['shape'].tolist()
        self.input_shape = [n, c, h, w]  # NCHW, like the ONNX backend reports it

    @staticmethod
    def _quantization(detail) -> Tuple[float, int]:
        scale, zero_point = detail['quantization']
        return float(scale), int(zero_point)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        def invoke(x: np.ndarray) -> np.ndarray:
            self.interpreter.set_tensor(self.input['index'], x)
            self.interpreter.invoke()
            return self.interpreter.get_tensor(self.output['index'])

        return run_nhwc_image_by_image(images, self.path, self.input['dtype'], self._quantization(self.input),
                                       self._quantization(self.output), invoke)
