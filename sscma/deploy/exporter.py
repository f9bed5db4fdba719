"""Export a trained model to ONNX / TorchScript (float32, float16, int8 PTQ) and measure every file.

For each exported file the report holds its size, parity with PyTorch on validation images, onnxruntime
(or TorchScript) latency at batch 1 on one thread, and the config's own test metric computed through
:class:`~sscma.deploy.backend_model.BackendModel` with the config's test pipeline and evaluator, next to the
float model's.
"""
import contextlib
import copy
import io
import os
import os.path as osp
import shutil
import statistics
import tempfile
import time
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from sscma.utils import ConfigError, ExportError, load_config, register_all_modules

from .backend_model import BackendModel, config_input_hw, input_channels, load_backend, task_of
from .tflite import compile_vela, export_tflite, onnx_to_saved_model
from .wrapper import input_channel_order, preprocessor_norm, raw_pixel_preprocessor, wrap_for_export

TARGETS = {'onnx': '.onnx', 'torchscript': '.pt', 'tflite': '.tflite', 'vela': '_vela.tflite'}
PRECISIONS = ('float32', 'float16', 'int8')
SUPPORTED = {('onnx', 'float32'), ('onnx', 'float16'), ('onnx', 'int8'), ('torchscript', 'float32'),
             ('torchscript', 'float16'), ('tflite', 'float32'), ('tflite', 'float16'), ('tflite', 'int8'),
             ('vela', 'int8')}
UNSUPPORTED_REASON = {'torchscript': 'TorchScript has no int8 export here (use ONNX or TFLite int8)',
                      'vela': 'vela compiles full-integer int8 models only'}
ONNX_OPSET = 13


# --------------------------------------------------------------------------------------------- model
def check_state_dict(model: nn.Module, state: Dict[str, torch.Tensor], checkpoint: str, config: str,
                     error: type = ExportError) -> None:
    """Raise ``error`` naming a few keys when ``state`` does not fit ``model`` exactly."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f'{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}' for k in own
              if k in state and hasattr(state[k], 'shape') and tuple(state[k].shape) != tuple(own[k].shape)]
    if not (missing or unexpected or shapes):
        return

    def few(keys: List[str]) -> str:
        return ', '.join(keys[:3]) + (f' (+{len(keys) - 3} more)' if len(keys) > 3 else '')

    parts = []
    if shapes:
        parts.append(f'shape mismatch (checkpoint vs model) {few(shapes)}')
    if missing:
        parts.append(f'{len(missing)} model keys missing from the checkpoint: {few(missing)}')
    if unexpected:
        parts.append(f'{len(unexpected)} unexpected keys: {few(unexpected)}')
    raise error(f'checkpoint {checkpoint} does not match the model of {config}: ' + '; '.join(parts)
                + ' (same config and --cfg-options as for training?)')


def check_checkpoint_fits(model: nn.Module, checkpoint: str, config: str, error: type = ExportError) -> None:
    """Raise ``error`` unless ``checkpoint`` is readable and holds exactly the weights of ``model``."""
    from mmengine.runner.checkpoint import _load_checkpoint
    try:
        ckpt = _load_checkpoint(checkpoint, map_location='cpu')
    except Exception as e:  # UnpicklingError, RuntimeError (not a zip), EOFError ...
        first = (str(e).strip().splitlines() or [''])[0].split('. ')[0]
        raise error(f'cannot read checkpoint {checkpoint}: not a PyTorch checkpoint holding a state dict '
                    f'({type(e).__name__}: {first})') from None
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise error(f'checkpoint {checkpoint} holds a {type(ckpt).__name__}, not a state dict')
    state = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}
    check_state_dict(model, state, checkpoint, config, error)


def build_model(cfg, checkpoint: str, config: str) -> nn.Module:
    """Build ``cfg.model``, check that ``checkpoint`` fits it exactly, load it and switch to eval mode."""
    from mmengine.runner.checkpoint import load_checkpoint

    from sscma.registry import MODELS
    model = MODELS.build(cfg.model)
    check_checkpoint_fits(model, checkpoint, config)
    load_checkpoint(model, checkpoint, map_location='cpu', strict=True, logger='silent')
    return model.eval()


def count_params(model: nn.Module) -> int:
    """Parameters that the model saves (a distillation teacher, kept out of checkpoints, does not count)."""
    saved = set(model.state_dict())
    return int(sum(p.numel() for name, p in model.named_parameters() if name in saved))


@torch.no_grad()
def count_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of Conv2d and Linear layers for one forward pass of ``x`` (batch 1)."""
    total = [0]

    def conv_hook(m: nn.Conv2d, inp, out) -> None:
        kh, kw = m.kernel_size
        total[0] += out.numel() // out.shape[0] * (m.in_channels // m.groups) * kh * kw

    def linear_hook(m: nn.Linear, inp, out) -> None:
        total[0] += out.numel() // out.shape[0] * m.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    return int(total[0])


# ---------------------------------------------------------------------------------------------- data
def build_loader(cfg, split: str):
    """The config's ``<split>_dataloader`` in this process (``num_workers=0``)."""
    from mmengine.runner import Runner
    key = f'{split}_dataloader'
    if cfg.get(key) is None:
        raise ConfigError(f'{cfg.filename} has no {key}: export needs it')
    loader_cfg = copy.deepcopy(cfg[key])
    loader_cfg['num_workers'] = 0
    loader_cfg['persistent_workers'] = False
    loader_cfg.pop('prefetch_factor', None)
    return Runner.build_dataloader(loader_cfg, seed=0)


def collect_images(model: nn.Module, loader, max_images: int, shape: Tuple[int, int, int], what: str,
                   with_reference: bool = True) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
    """Raw-pixel batches (what the exported graph takes) and, optionally, PyTorch's outputs for them."""
    raw_pre = raw_pixel_preprocessor(model.data_preprocessor)
    reference = wrap_for_export(model)
    raws, refs, n = [], [], 0
    with torch.no_grad():
        for data in loader:
            raw = raw_pre(copy.deepcopy(data), False)['inputs'].float()
            if tuple(raw.shape[1:]) != tuple(shape):
                raise ExportError(f'the {what} images are {"x".join(map(str, raw.shape[1:]))} (CxHxW) but the '
                                  f'export input is {"x".join(map(str, shape))}: the config\'s pipeline does not '
                                  'resize to --input-shape; set --cfg-options imgsz="(W,H)" instead')
            raws.append(raw)
            if with_reference:  # what the exported graph computes, in PyTorch
                refs.append(reference(raw))
            n += raw.shape[0]
            if n >= max_images:
                break
    if not raws:
        raise ExportError(f'the {what} dataloader of the config yields no images')
    return raws, refs


# -------------------------------------------------------------------------------------------- export
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
    dummy = torch.rand(1, *shape) * 255
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


def export_torchscript(wrapper: nn.Module, shape: Tuple[int, int, int], path: str, half: bool = False) -> None:
    module = copy.deepcopy(wrapper).half() if half else wrapper
    dummy = torch.rand(2, *shape) * 255
    with _quiet(), torch.no_grad():
        traced = torch.jit.trace(module, (dummy, ), check_trace=False)
        torch.jit.save(traced, path)


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


# ------------------------------------------------------------------------------------------ measures
def parity(backend, raws: Sequence[torch.Tensor], refs: Sequence[torch.Tensor]) -> Dict[str, Any]:
    """Max / mean abs difference to PyTorch (and relative to PyTorch's largest output) and argmax agreement
    (per image for logits, per cell for FOMO's probability maps)."""
    max_diff, sum_diff, n_el, agree, n_arg, max_ref = 0.0, 0.0, 0, 0, 0, 0.0
    for raw, ref in zip(raws, refs):
        out = torch.from_numpy(backend(raw.numpy()))
        if out.shape != ref.shape:
            raise ExportError(f'{backend.path} outputs {tuple(out.shape)}, PyTorch {tuple(ref.shape)}')
        diff = (out - ref).abs()
        max_diff = max(max_diff, float(diff.max()))
        max_ref = max(max_ref, float(ref.abs().max()))
        sum_diff += float(diff.sum())
        n_el += diff.numel()
        same = out.argmax(1) == ref.argmax(1)
        agree += int(same.sum())
        n_arg += same.numel()
    return dict(images=int(sum(r.shape[0] for r in raws)), max_abs_diff=max_diff, mean_abs_diff=sum_diff / n_el,
                max_abs_reference=max_ref, max_rel_diff=max_diff / max(max_ref, 1e-12),
                argmax_agreement=agree / n_arg, argmax_compared=n_arg)


def _time(fn, runs: int, warmup: int = 3) -> Dict[str, float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return dict(median_ms=statistics.median(times), mean_ms=statistics.fmean(times), runs=runs, threads=1,
                batch=1)


@contextlib.contextmanager
def torch_threads(n: int):
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def latency(path: str, kind: str, shape: Tuple[int, int, int], runs: int) -> Dict[str, Any]:
    x = (np.random.default_rng(0).random((1, *shape)) * 255).astype(np.float32)
    if kind in ('onnx', 'tflite'):
        backend = load_backend(path, num_threads=1)
        res = _time(lambda: backend(x), runs)
        res['runtime'] = 'onnxruntime CPUExecutionProvider' if kind == 'onnx' else 'LiteRT interpreter (XNNPACK)'
        return res
    backend = load_backend(path)
    with torch_threads(1):
        res = _time(lambda: backend(x), runs)
    res['runtime'] = 'torch.jit (CPU)'
    return res


def evaluate(model: nn.Module, cfg, split: str = 'test', loader=None) -> Dict[str, Any]:
    """The config's ``<split>_evaluator`` over its ``<split>_dataloader`` (what ``tools/test.py`` computes)."""
    from mmengine.evaluator import Evaluator

    from sscma.utils.jsonable import to_jsonable
    key = f'{split}_evaluator'
    if cfg.get(key) is None:
        raise ConfigError(f'{cfg.filename} has no {key}')
    loader = loader if loader is not None else build_loader(cfg, split)
    metrics = copy.deepcopy(cfg[key])
    evaluator = Evaluator(metrics if isinstance(metrics, list) else [metrics])
    evaluator.dataset_meta = getattr(loader.dataset, 'metainfo', None)
    model.eval()
    with torch.no_grad():
        for data in loader:
            outputs = model.test_step(data)
            evaluator.process(data_samples=outputs, data_batch=data)
    return to_jsonable(evaluator.evaluate(len(loader.dataset)))


def scalar_metrics(metrics: Dict[str, Any]) -> Dict[str, float]:
    return {k: float(v) for k, v in (metrics or {}).items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


# ------------------------------------------------------------------------------------------------ main
def _validate_request(targets: Sequence[str], precisions: Sequence[str]) -> List[Tuple[str, str]]:
    for t in targets:
        if t not in TARGETS:
            raise ExportError(f'--targets {t}: unknown target; choose from {", ".join(TARGETS)}')
    for p in precisions:
        if p not in PRECISIONS:
            raise ExportError(f'--precisions {p}: unknown precision; choose from {", ".join(PRECISIONS)}')
    if not targets or not precisions:
        raise ExportError('nothing to export: give at least one --targets and one --precisions')
    pairs = [(t, p) for t in dict.fromkeys(targets) for p in dict.fromkeys(precisions) if (t, p) in SUPPORTED]
    if not pairs:
        raise ExportError(f'--targets {" ".join(targets)} --precisions {" ".join(precisions)}: no supported '
                          'combination (torchscript: float32/float16; vela: int8)')
    return pairs


def _shape_options(input_shape: Optional[Sequence[int]], cfg_options: Dict[str, Any], config: str):
    """Turn ``--input-shape [C] H W`` into the config's ``imgsz`` so that every pipeline resizes to it."""
    if input_shape is None:
        return None, cfg_options
    shape = [int(v) for v in input_shape]
    text = ' '.join(map(str, shape))
    if len(shape) not in (2, 3):
        raise ExportError(f'--input-shape {text}: give H W (or C H W)')
    if any(v <= 0 for v in shape):
        raise ExportError(f'--input-shape {text}: sizes must be positive')
    options = dict(cfg_options)
    h, w = shape[-2:]
    from sscma.utils import top_level_variables
    if 'imgsz' in top_level_variables(config):
        given = options.get('imgsz')
        if given is not None and tuple(given) != (w, h):
            raise ExportError(f'--input-shape {text} (H W) contradicts --cfg-options imgsz={tuple(given)} (W, H)')
        options['imgsz'] = (w, h)
    return shape, options


def export_model(config: str, checkpoint: str, targets: Sequence[str] = ('onnx', 'torchscript', 'tflite', 'vela'),
                 precisions: Sequence[str] = ('float32', 'float16', 'int8'), calib_batches: int = 8,
                 input_shape: Optional[Sequence[int]] = None, work_dir: Optional[str] = None,
                 cfg_options: Optional[Dict[str, Any]] = None, run_eval: bool = True, parity_images: int = 64,
                 latency_runs: int = 50, vela_accelerator: str = 'ethos-u55-128', log=print) -> Dict[str, Any]:
    """Export ``checkpoint`` of ``config`` and write ``export_report.json`` / ``.md`` to the work dir.

    Returns the report (a JSON-able dict). See ``tools/export.py`` for the arguments.
    """
    pairs = _validate_request(targets, precisions)
    if calib_batches < 1:
        raise ExportError(f'--calib-batches {calib_batches}: must be at least 1')
    if not osp.isfile(checkpoint):
        raise ConfigError(f'checkpoint file not found: {checkpoint}')
    register_all_modules()
    shape_arg, options = _shape_options(input_shape, dict(cfg_options or {}), config)
    cfg = load_config(config, options)
    model = build_model(cfg, checkpoint, config)
    task = task_of(model)

    channels = input_channels(model)
    hw = tuple(shape_arg[-2:]) if shape_arg else config_input_hw(cfg)
    if hw is None:
        raise ExportError(f'{config} has no imgsz: give the input size with --input-shape H W')
    if shape_arg and len(shape_arg) == 3 and shape_arg[0] != channels:
        raise ExportError(f'--input-shape {" ".join(map(str, shape_arg))}: the model takes {channels}-channel '
                          f'images, not {shape_arg[0]}')
    stride = getattr(getattr(model, 'head', None), 'stride', None) if task == 'fomo' else None
    if stride and (hw[0] % stride or hw[1] % stride):
        raise ExportError(f'--input-shape {hw[0]} {hw[1]}: FOMO needs H and W that are multiples of its '
                          f'output stride {stride}')
    shape = (channels, *hw)
    wrapper = wrap_for_export(model)
    try:
        with torch.no_grad():
            out_shape = tuple(wrapper(torch.zeros(1, *shape)).shape)
    except RuntimeError as e:
        raise ExportError(f'input shape {hw[0]} {hw[1]} (H W): the model cannot run on a 1x{channels}x{hw[0]}x'
                          f'{hw[1]} image: {str(e).splitlines()[0]}') from None

    work_dir = work_dir or osp.join(osp.dirname(osp.abspath(checkpoint)), 'export')
    os.makedirs(work_dir, exist_ok=True)
    stem = osp.splitext(osp.basename(checkpoint))[0]
    mean, std = preprocessor_norm(model.data_preprocessor)
    report: Dict[str, Any] = dict(
        config=config, checkpoint=checkpoint, cfg_options={k: repr(v) for k, v in options.items()},
        work_dir=work_dir, task=task, model_type=type(model).__name__,
        input=dict(name='images', shape=[1, *shape], layout='NCHW', dtype='float32', value_range='0..255 (raw pixels)',
                   channel_order=input_channel_order(model.data_preprocessor, channels),
                   normalization_in_graph=dict(mean=mean.tolist() if mean is not None else None,
                                               std=std.tolist() if std is not None else None)),
        output=dict(name='output', shape=[1, *out_shape[1:]], meaning=(
            'per-cell probabilities (softmax over background + classes; channel 0 = background)'
            if task == 'fomo' else 'class logits (no softmax)' if task == 'classification' else
            'keypoints (x0, y0, x1, y1, ...) in [0, 1] of the input width / height' if task == 'keypoints'
            else '(1, cells of all levels, num_classes + 4): sigmoid class scores, then box distances '
            '(left, top, right, bottom) from each cell centre divided by the input W, H, W, H'
            if task == 'detection' else 'model tensor')),
        postprocessing=('outside the graph: FomoHead.predict_by_probs (score_thr, 3x3 peak, cell centre)'
                        if task == 'fomo' else 'outside the graph: softmax / argmax (mmpretrain ClsHead)'
                        if task == 'classification' else 'outside the graph: multiply by the image size '
                        '(KeypointRegressor.add_pred_to_datasample)' if task == 'keypoints' else
                        'outside the graph: the head\'s predict_by_feat (decoding, score threshold, NMS)'
                        if task == 'detection' else 'none available'),
        params=count_params(model), macs=count_macs(wrapper, torch.zeros(1, *shape)),
        exports=[], skipped=[], failed=[])
    for t in dict.fromkeys(targets):
        for p in dict.fromkeys(precisions):
            if (t, p) not in SUPPORTED:
                report['skipped'].append(dict(target=t, precision=p, reason=UNSUPPORTED_REASON.get(t, 'not supported')))

    log(f'export: {type(model).__name__}, input 1x{shape[0]}x{shape[1]}x{shape[2]}, output {out_shape}, '
        f'{report["params"]:,} params, {report["macs"]:,} MACs')
    val_loader = build_loader(cfg, 'val')
    raws, refs = collect_images(model, val_loader, parity_images, shape, 'validation')
    report['parity_images'] = int(sum(r.shape[0] for r in raws))

    tmp = tempfile.mkdtemp(prefix='sscma_export_')
    calib: List[torch.Tensor] = []
    try:
        fp32_onnx = osp.join(tmp, f'{stem}_float32.onnx')
        export_onnx_fp32(wrapper, shape, fp32_onnx)
        saved_model = int8_tflite = saved_model_error = None
        for target, precision in pairs:
            path = osp.join(work_dir, f'{stem}_{precision}{TARGETS[target]}')
            entry: Dict[str, Any] = dict(target=target, precision=precision, file=path)
            log(f'export: {target} {precision} -> {path}')
            try:
                t0 = time.perf_counter()
                if precision == 'int8' and not calib:
                    train_loader = build_loader(cfg, 'train')
                    calib, _ = collect_images(model, _take(train_loader, calib_batches), 10**9, shape, 'training',
                                              with_reference=False)
                if target in ('tflite', 'vela') and saved_model is None:
                    if saved_model_error is not None:
                        raise saved_model_error
                    static_onnx = osp.join(tmp, f'{stem}_float32_batch1.onnx')
                    export_onnx_fp32(wrapper, shape, static_onnx, dynamic_batch=False)
                    sample = (calib or raws)[0].permute(0, 2, 3, 1).numpy()
                    try:
                        saved_model = onnx_to_saved_model(static_onnx, osp.join(tmp, 'saved_model'), sample)
                    except ExportError as e:
                        saved_model_error = e
                        raise
                if target == 'onnx' and precision == 'float32':
                    shutil.copyfile(fp32_onnx, path)
                elif target == 'onnx' and precision == 'float16':
                    export_onnx_fp16(fp32_onnx, path)
                elif target == 'onnx' and precision == 'int8':
                    entry['quantization'] = export_onnx_int8(fp32_onnx, calib, path)
                elif target == 'torchscript':
                    export_torchscript(wrapper, shape, path, half=precision == 'float16')
                elif target == 'tflite':
                    nhwc = [c.permute(0, 2, 3, 1).numpy() for c in calib]
                    entry['tflite'] = export_tflite(saved_model, path, precision, nhwc)
                    if precision == 'int8':
                        int8_tflite = path
                elif target == 'vela':
                    if int8_tflite is None:
                        int8_tflite = osp.join(tmp, f'{stem}_int8.tflite')
                        export_tflite(saved_model, int8_tflite, 'int8',
                                      [c.permute(0, 2, 3, 1).numpy() for c in calib])
                    entry['vela'] = compile_vela(int8_tflite, path, vela_accelerator)
                    entry['compiled_from'] = int8_tflite if int8_tflite.startswith(work_dir) else None
                entry['export_seconds'] = round(time.perf_counter() - t0, 2)
                entry['size_bytes'] = osp.getsize(path)
                if target == 'vela':  # runs on the NPU only: its numbers are vela's estimate
                    report['exports'].append(entry)
                    continue
                backend = load_backend(path)
                entry['input_shape'] = [d if d else 'batch' for d in (backend.input_shape or [None, *shape])]
                entry['dynamic_batch'] = entry['input_shape'][0] == 'batch'
                entry['parity'] = parity(backend, raws, refs)
                entry['latency'] = latency(path, target, shape, latency_runs) if latency_runs else None
                report['exports'].append(entry)
            except ExportError as e:  # one target the model cannot take: keep the others, say why
                if osp.isfile(path):
                    os.remove(path)
                log(f'export: {target} {precision} FAILED: {e}')
                report['failed'].append(dict(target=target, precision=precision, error=str(e)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    report['float_latency'] = None
    if latency_runs:
        x = torch.rand(1, *shape) * 255
        with torch_threads(1), torch.no_grad():
            report['float_latency'] = dict(_time(lambda: wrapper(x), latency_runs), runtime='torch eager (CPU)')
    if run_eval:
        if task is None:
            report['eval_note'] = f'no post-processing for exported {type(model).__name__} outputs: not evaluated'
        else:
            report['eval_split'] = 'test'
            log('export: evaluating the float model on the test split')
            test_loader = build_loader(cfg, 'test')
            report['float_metrics'] = evaluate(model, cfg, 'test', test_loader)
            base = scalar_metrics(report['float_metrics'])
            for entry in report['exports']:
                if entry['target'] == 'vela':
                    continue
                log(f'export: evaluating {osp.basename(entry["file"])}')
                backend_model = BackendModel(model, entry['file'], input_hw=hw, check_outputs=False)
                t0 = time.perf_counter()
                entry['metrics'] = evaluate(backend_model, cfg, 'test', test_loader)
                entry['eval_seconds'] = round(time.perf_counter() - t0, 2)
                got = scalar_metrics(entry['metrics'])
                entry['metric_delta'] = {k: got[k] - base[k] for k in base if k in got}
    from .report import write_report
    report['report_files'] = write_report(report, work_dir)
    return report


def _take(loader, n: int):
    for i, data in enumerate(loader):
        if i >= n:
            break
        yield data
