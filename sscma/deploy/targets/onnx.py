"""ONNX (``--targets onnx``): float32 / float16 / int8 (ppq PTQ, QDQ) graphs that onnxruntime runs.

float32: ``torch.onnx.export`` (TorchScript exporter, opset 13), simplified by onnxsim, checked by
``onnx.checker``; float16: onnxconverter-common with float32 input and output; int8: ppq's post-training
quantisation for onnxruntime, calibrated on the config's training images, weights stored as int8.
"""
import contextlib
import io
import os.path as osp
import shutil
import warnings
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from sscma.deploy.model_meta import read_onnx_meta, write_onnx_meta
from sscma.registry import EXPORT_TARGETS
from sscma.utils import ExportError

from .base import ExportTarget

ONNX_OPSET = 13


@EXPORT_TARGETS.register_module('onnx')
class OnnxTarget(ExportTarget):
    """ONNX files for onnxruntime and NPU compilers; the float32 graph has a dynamic batch axis."""
    suffix = '.onnx'
    precisions = ('float32', 'float16', 'int8')
    runtime = 'onnxruntime CPUExecutionProvider'

    def export(self, ctx, precision: str, path: str) -> Dict[str, Any]:
        fp32 = float32_onnx(ctx)
        if precision == 'float32':
            shutil.copyfile(fp32, path)
        elif precision == 'float16':
            export_onnx_fp16(fp32, path)
        else:
            return dict(quantization=export_onnx_int8(fp32, ctx.calibration(), path))
        return {}

    def load(self, path: str, num_threads: Optional[int] = None) -> 'OnnxBackend':
        return OnnxBackend(path, num_threads)

    def write_meta(self, path: str, meta: Dict[str, Any]) -> None:
        write_onnx_meta(path, meta)

    def read_meta(self, path: str) -> Optional[Dict[str, Any]]:
        return read_onnx_meta(path)

    def report_notes(self, entry: Dict[str, Any]) -> List[str]:
        info = entry.get('quantization')
        if not info:
            return []
        return [f'int8 (`{osp.basename(entry["file"])}`): {info["quantizer"]}, {info["weights"]} weights, '
                f'{info["activations"]} activations, {info["calibration_images"]} calibration images from the '
                f'train dataloader, {info["quantize_linear_nodes"]} QuantizeLinear nodes.']


def float32_onnx(ctx) -> str:
    """The run's float32 ONNX graph (dynamic batch), exported once into the temporary folder."""
    path = ctx.tmp_path(f'{ctx.stem}_float32.onnx')
    return ctx.artifact('onnx.float32', lambda: (export_onnx_fp32(ctx.wrapper, ctx.shape, path), path)[1])


def _quiet():
    """Silence the exporters' warnings and prints (they are many and say nothing the report does not)."""
    stack = contextlib.ExitStack()
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter('ignore')
    return stack


def export_onnx_fp32(wrapper: nn.Module, shape: Tuple[int, int, int], path: str, dynamic_batch: bool = True) -> None:
    """``torch.onnx.export`` (TorchScript exporter, opset 13), onnxsim, onnx.checker.

    A dynamic batch axis suits onnxruntime; TFLite conversion takes the batch-1 graph, whose shapes onnxsim
    folds into constants.
    """
    import onnx
    import onnxsim
    dummy = torch.rand(1, *shape, generator=torch.Generator().manual_seed(0)) * 255
    with _quiet(), contextlib.redirect_stdout(io.StringIO()):
        torch.onnx.export(wrapper, (dummy, ), path, dynamo=False, opset_version=ONNX_OPSET, input_names=['images'],
                          output_names=['output'],
                          dynamic_axes={'images': {0: 'batch'}, 'output': {0: 'batch'}} if dynamic_batch else None,
                          do_constant_folding=True)
        simplified, ok = onnxsim.simplify(onnx.load(path))
    if not ok:
        raise ExportError(f'onnxsim could not validate the simplified graph of {path}')
    onnx.checker.check_model(simplified)
    onnx.save(simplified, path)


def export_onnx_fp16(fp32_path: str, path: str) -> None:
    import onnx
    from onnxconverter_common import float16
    with _quiet():
        model = float16.convert_float_to_float16(onnx.load(fp32_path), keep_io_types=True)
    onnx.checker.check_model(model)
    onnx.save(model, path)


def export_onnx_int8(fp32_path: str, calib: List[torch.Tensor], path: str) -> Dict[str, Any]:
    """ppq post-training quantisation for onnxruntime (int8 QDQ; per-channel weights, per-tensor activations)."""
    import onnx
    log = io.StringIO()
    with _quiet(), contextlib.redirect_stdout(log):  # ppq prints a banner on import
        from ppq import QuantizationSettingFactory, TargetPlatform
        from ppq.api import export_ppq_graph, quantize_onnx_model
    setting = QuantizationSettingFactory.default_setting()
    # One image per calibration step (the graph's batch dimension is dynamic); ppq insists on >= 8 steps,
    # so a tiny calibration set is cycled.
    images = torch.cat(list(calib))
    n_images = images.shape[0]
    n_steps = max(8, len(calib))
    images = images.repeat((n_steps + n_images - 1) // n_images, 1, 1, 1) if n_images < n_steps else images
    calib = [chunk for chunk in torch.tensor_split(images, min(n_steps, images.shape[0])) if len(chunk)]
    try:
        with _quiet(), contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            graph = quantize_onnx_model(onnx_import_file=fp32_path, calib_dataloader=calib,
                                        calib_steps=len(calib), input_shape=[1, *calib[0].shape[1:]],
                                        platform=TargetPlatform.ONNXRUNTIME, setting=setting, device='cpu',
                                        collate_fn=lambda x: x.float().to('cpu'), verbose=0)
            export_ppq_graph(graph=graph, platform=TargetPlatform.ONNXRUNTIME, graph_save_to=path)
    except Exception as e:
        raise ExportError(f'ppq int8 quantisation of {fp32_path} failed: {type(e).__name__}: {e}\n'
                          f'{log.getvalue()[-2000:]}') from None
    model = onnx.load(path)
    for opset in model.opset_import:  # ppq names the default domain 'ai.onnx'; onnx.checker wants ''
        if opset.domain == 'ai.onnx':
            opset.domain = ''
    fold_weight_quantization(model)
    onnx.checker.check_model(model)
    onnx.save(model, path)
    ops = [n.op_type for n in model.graph.node]
    return dict(quantizer='ppq 0.6.6 TargetPlatform.ONNXRUNTIME (QDQ)', calibration_images=n_images,
                calibration_steps=len(calib), weights='int8 symmetric per-channel', activations='int8 symmetric '
                'per-tensor (percentile)', quantize_linear_nodes=ops.count('QuantizeLinear'),
                dequantize_linear_nodes=ops.count('DequantizeLinear'))


def fold_weight_quantization(model) -> int:
    """Store quantised weights as int8 initialisers.

    ppq's QDQ export keeps every weight in float32 behind a ``QuantizeLinear``; a ``QuantizeLinear`` whose
    input, scale and zero point are all constants is computed here (round half to even and saturate, as
    ONNX defines it) and replaced by its int8 result, so the file holds int8 weights and is about 4x smaller.
    Returns the number of folded nodes.
    """
    from onnx import numpy_helper
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    uses: Dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    folded, keep = 0, []
    for node in graph.node:
        if (node.op_type != 'QuantizeLinear' or len(node.input) != 3
                or not all(name in inits for name in node.input)):
            keep.append(node)
            continue
        w, scale, zp = (numpy_helper.to_array(inits[name]) for name in node.input)
        if zp.dtype not in (np.int8, np.uint8):
            keep.append(node)
            continue
        axis = next((a.i for a in node.attribute if a.name == 'axis'), 1)
        if scale.ndim == 1 and scale.size > 1:
            shape = [1] * w.ndim
            shape[axis] = -1
            scale, zp = scale.reshape(shape), zp.reshape(shape)
        info = np.iinfo(zp.dtype)
        q = np.clip(np.rint(w.astype(np.float32) / scale) + zp.astype(np.int32), info.min, info.max)
        graph.initializer.append(numpy_helper.from_array(q.astype(zp.dtype), node.output[0]))
        for name in node.input:  # the float weight, scale and zero point, when nothing else reads them
            uses[name] -= 1
        folded += 1
    del graph.node[:]
    graph.node.extend(keep)
    unused = [t for t in graph.initializer if t.name in uses and uses[t.name] <= 0]
    for t in unused:
        graph.initializer.remove(t)
    return folded


class OnnxBackend:
    """An onnxruntime session on CPU. A graph with a fixed batch size is run sample by sample.

    ``custom_ops_library``: a shared library of custom op kernels the graph needs (registered in the session).
    """

    def __init__(self, path: str, num_threads: Optional[int] = None, custom_ops_library: Optional[str] = None) -> None:
        import onnxruntime as ort
        opts = ort.SessionOptions()
        if custom_ops_library:
            opts.register_custom_ops_library(custom_ops_library)
        if num_threads:
            opts.intra_op_num_threads = num_threads
            opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(path, opts, providers=['CPUExecutionProvider'])
        except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise ExportError(f'{path}: onnxruntime cannot load this model: {e}') from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ExportError(f'{path}: expected a model with one image input, it has {len(inputs)}')
        self.path = path
        self.input_name = inputs[0].name
        self.input_shape = [d if isinstance(d, int) else None for d in inputs[0].shape]
        self.input_dtype = np.float16 if 'float16' in inputs[0].type else np.float32

    def __call__(self, images: np.ndarray) -> np.ndarray:
        images = images.astype(self.input_dtype, copy=False)
        fixed = self.input_shape[0] if self.input_shape else None
        if fixed and fixed != images.shape[0]:
            if images.shape[0] % fixed:
                raise ExportError(f'{self.path} has a fixed batch size of {fixed}; '
                                  f'a batch of {images.shape[0]} does not divide into it')
            return np.concatenate([self(images[i:i + fixed]) for i in range(0, images.shape[0], fixed)])
        out = self.session.run(None, {self.input_name: images})[0]
        return out.astype(np.float32, copy=False)
