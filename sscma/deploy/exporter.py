"""Export a trained model to every requested target and measure every file.

``export_model`` is a loop over the requested :data:`~sscma.registry.EXPORT_TARGETS` in dependency order;
what each file is, how it is written and loaded back lives in its target (:mod:`sscma.deploy.targets`), and
what the graph's output means and how to compare it with PyTorch lives in the model's task
(:mod:`sscma.tasks`); the model, its counts and the evaluation loop come from :mod:`.measures`. For each exported file the report holds its size, parity with PyTorch on
validation images, latency at batch 1 on one thread, and the config's own test metric computed through
:class:`~sscma.deploy.backend_model.BackendModel` with the config's test pipeline and evaluator, next to the
float model's.
"""
import copy
import os
import os.path as osp
import shutil
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from sscma.tasks import Task, task_of
from sscma.utils import ConfigError, ExportError, load_config, register_all_modules
from sscma.utils.class_names import bind_model_classes
from sscma.utils.config import config_source
from sscma.utils.jsonable import scalar_metrics

from .backend_model import BackendModel, config_input_hw, input_channels
from .context import ExportContext
from .measures import build_loader, build_model, count_macs, count_params, evaluate
from .model_meta import model_class_names, model_keypoints
from .targets.base import all_precisions, get_target, target_names, time_runs, torch_threads
from .wrapper import input_channel_order, preprocessor_norm, raw_pixel_preprocessor, wrap_for_export


# ---------------------------------------------------------------------------------------------- data
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


# ------------------------------------------------------------------------------------------ measures
def parity(adapter: Task, model: nn.Module, backend, raws: Sequence[torch.Tensor],
           refs: Sequence[torch.Tensor], input_hw: Tuple[int, int]) -> Dict[str, Any]:
    """Max / mean abs difference to PyTorch (and relative to PyTorch's largest output), and the task's own
    agreement measures (:meth:`Task.parity`)."""
    outs = []
    max_diff, sum_diff, n_el, max_ref = 0.0, 0.0, 0, 0.0
    for raw, ref in zip(raws, refs):
        out = torch.from_numpy(backend(raw.numpy()))
        if out.shape != ref.shape:
            raise ExportError(f'{backend.path} outputs {tuple(out.shape)}, PyTorch {tuple(ref.shape)}')
        diff = (out - ref).abs()
        max_diff = max(max_diff, float(diff.max()))
        max_ref = max(max_ref, float(ref.abs().max()))
        sum_diff += float(diff.sum())
        n_el += diff.numel()
        outs.append(out)
    return dict(images=int(sum(r.shape[0] for r in raws)), max_abs_diff=max_diff, mean_abs_diff=sum_diff / n_el,
                max_abs_reference=max_ref, max_rel_diff=max_diff / max(max_ref, 1e-12),
                **adapter.parity(model, outs, refs, input_hw))


# ------------------------------------------------------------------------------------------------ main
def requested_pairs(targets: Sequence[str], precisions: Sequence[str]) -> Tuple[List[Tuple[str, str]], List[Dict]]:
    """The supported ``(target, precision)`` pairs to export, each after the files it is built from, and the
    skipped ones with the target's reason."""
    known = all_precisions()
    for p in precisions:
        if p not in known:
            raise ExportError(f'--precisions {p}: unknown precision; choose from {", ".join(known)}')
    if not targets or not precisions:
        raise ExportError('nothing to export: give at least one --targets and one --precisions')
    chosen = {t: get_target(t) for t in dict.fromkeys(targets)}
    pairs = [(t, p) for t in chosen for p in dict.fromkeys(precisions) if p in chosen[t].precisions]
    skipped = [dict(target=t, precision=p, reason=chosen[t].unsupported_reason)
               for t in chosen for p in dict.fromkeys(precisions) if p not in chosen[t].precisions]
    if not pairs:
        offered = '; '.join(f'{t}: {"/".join(target.precisions)}' for t, target in chosen.items())
        raise ExportError(f'--targets {" ".join(targets)} --precisions {" ".join(precisions)}: no supported '
                          f'combination ({offered})')
    ordered: List[Tuple[str, str]] = []

    def visit(pair: Tuple[str, str], chain: Tuple) -> None:
        if pair in ordered:
            return
        if pair in chain:
            raise ExportError(f'export targets require each other: {" -> ".join(map(str, chain + (pair, )))}')
        for dep in get_target(pair[0]).requires:
            if tuple(dep) in pairs:
                visit(tuple(dep), chain + (pair, ))
        ordered.append(pair)

    for pair in pairs:
        visit(pair, ())
    return ordered, skipped


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


def export_model(config: str, checkpoint: str, targets: Optional[Sequence[str]] = None,
                 precisions: Sequence[str] = ('float32', 'float16', 'int8'), calib_batches: int = 8,
                 input_shape: Optional[Sequence[int]] = None, work_dir: Optional[str] = None,
                 cfg_options: Optional[Dict[str, Any]] = None, run_eval: bool = True, parity_images: int = 64,
                 latency_runs: int = 50, vela_accelerator: Optional[str] = None,
                 devices: Optional[Sequence[str]] = None, log=print) -> Dict[str, Any]:
    """Export ``checkpoint`` of ``config`` and write ``export_report.json`` / ``.md`` to the work dir.

    ``targets`` are names registered in :data:`~sscma.registry.EXPORT_TARGETS` (default: the built-in
    ones, :func:`~sscma.deploy.targets.target_names`); a config's ``custom_imports`` (also given as
    ``--cfg-options``) can register more. Returns the report (a JSON-able dict). See ``tools/export.py``
    for the arguments.
    """
    if calib_batches < 1:
        raise ExportError(f'--calib-batches {calib_batches}: must be at least 1')
    if not osp.isfile(checkpoint):
        raise ConfigError(f'checkpoint file not found: {checkpoint}')
    register_all_modules()
    shape_arg, options = _shape_options(input_shape, dict(cfg_options or {}), config)
    cfg = load_config(config, options)  # imports the config's custom_imports (plug-in targets and tasks)
    targets = list(targets) if targets else target_names(defaults_only=True)
    pairs, skipped = requested_pairs(targets, precisions)
    model = build_model(cfg, checkpoint, config)
    adapter = task_of(model)

    channels = input_channels(model)
    hw = tuple(shape_arg[-2:]) if shape_arg else config_input_hw(cfg)
    if hw is None:
        raise ExportError(f'{config} has no imgsz: give the input size with --input-shape H W')
    if shape_arg and len(shape_arg) == 3 and shape_arg[0] != channels:
        raise ExportError(f'--input-shape {" ".join(map(str, shape_arg))}: the model takes {channels}-channel '
                          f'images, not {shape_arg[0]}')
    adapter.check_input(model, hw)
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
        work_dir=work_dir, task=adapter.task, model_type=type(model).__name__,
        input=dict(name='images', shape=[1, *shape], layout='NCHW', dtype='float32', value_range='0..255 (raw pixels)',
                   channel_order=input_channel_order(model.data_preprocessor, channels),
                   normalization_in_graph=dict(mean=mean.tolist() if mean is not None else None,
                                               std=std.tolist() if std is not None else None)),
        output=dict(name='output', shape=[1, *out_shape[1:]], meaning=adapter.output_meaning(model),
                    constants=adapter.output_constants(model)),
        postprocessing=adapter.postprocessing, parity_columns=[list(c) for c in adapter.parity_columns],
        params=count_params(model), macs=count_macs(wrapper, torch.zeros(1, *shape)),
        exports=[], skipped=skipped, failed=[])

    log(f'export: {type(model).__name__}, input 1x{shape[0]}x{shape[1]}x{shape[2]}, output {out_shape}, '
        f'{report["params"]:,} params, {report["macs"]:,} MACs')
    val_loader = build_loader(cfg, 'val')
    raws, refs = collect_images(model, val_loader, parity_images, shape, 'validation')
    report['parity_images'] = int(sum(r.shape[0] for r in raws))
    report['reference_parity'] = adapter.parity(model, refs, refs, hw)  # what perfect agreement reads as

    def calibrate() -> List[torch.Tensor]:
        from mmengine.runner import set_random_seed
        set_random_seed(0)  # the train pipeline's random augmentations: the same calibration images every export
        train_loader = build_loader(cfg, 'train')
        return adapter.calibration_images(model, collect_images(model, _take(train_loader, calib_batches), 10**9,
                                                                shape, 'training', with_reference=False)[0])

    classes = model_class_names(checkpoint) or []
    if not classes:
        log(f'export: {checkpoint} carries no class names (a checkpoint from before names were saved): the '
            'exported files carry none either, and the test metric compares class ids as they are')
    report['classes'] = classes
    meta = dict(classes=classes, task=adapter.task, model_type=report['model_type'], input=report['input'],
                output=report['output'], postprocessing=report['postprocessing'], config=osp.basename(config),
                config_source=config_source(config, options),  # the file alone rebuilds its config
                **model_keypoints(checkpoint))
    tmp = tempfile.mkdtemp(prefix='sscma_export_')
    ctx = ExportContext(model, wrapper, shape, stem, work_dir, tmp, raws, calibrate,
                        dict(vela_accelerator=vela_accelerator, devices=list(devices or [])), meta)
    try:
        for name, precision in pairs:
            target = get_target(name)
            path = osp.join(work_dir, target.file_name(stem, precision))
            entry: Dict[str, Any] = dict(target=name, precision=precision, file=path)
            log(f'export: {name} {precision} -> {path}')
            try:
                t0 = time.perf_counter()
                reason = target.unavailable()
                if reason:
                    raise ExportError(reason)
                entry.update(target.export(ctx, precision, path) or {})
                target.write_meta(path, ctx.meta)
                entry['export_seconds'] = round(time.perf_counter() - t0, 2)
                entry['size_bytes'] = osp.getsize(path)
                ctx.files[(name, precision)] = path
                if target.runs_on_host:  # a file for an NPU only has the numbers its compiler estimates
                    backend = target.load(path)
                    entry['input_shape'] = [d if d else 'batch' for d in (backend.input_shape or [None, *shape])]
                    entry['dynamic_batch'] = entry['input_shape'][0] == 'batch'
                    entry['parity'] = parity(adapter, model, backend, raws, refs, hw)
                    entry['latency'] = target.latency(path, shape, latency_runs) if latency_runs else None
                report['exports'].append(entry)
            except ExportError as e:  # one target the model cannot take: keep the others, say why
                ctx.files.pop((name, precision), None)
                ctx.failed[(name, precision)] = e
                if osp.isfile(path):
                    os.remove(path)
                log(f'export: {name} {precision} FAILED: {e}')
                report['failed'].append(dict(target=name, precision=precision, error=str(e)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    report['float_latency'] = None
    if latency_runs:
        x = torch.rand(1, *shape) * 255
        with torch_threads(1), torch.no_grad():
            report['float_latency'] = dict(time_runs(lambda: wrapper(x), latency_runs), runtime='torch eager (CPU)')
    if run_eval:
        _evaluate_exports(report, model, adapter, cfg, hw, log)
    from .report import write_report
    report['report_files'] = write_report(report, work_dir)
    return report


def _evaluate_exports(report: Dict[str, Any], model: nn.Module, adapter: Task, cfg, hw, log) -> None:
    """The test metric of the float model and of every file that runs here, with the differences; the test
    labels are numbered in the model's class order (matched by name, see :mod:`sscma.utils.class_names`)."""
    if not adapter.evaluable:
        report['eval_note'] = f'no post-processing for exported {type(model).__name__} outputs: not evaluated'
        return
    report['eval_split'] = 'test'
    log('export: evaluating the float model on the test split')
    cfg = copy.deepcopy(cfg)
    bind_model_classes(cfg, report['classes'], report['checkpoint'], ('test_dataloader', ),
                       keypoints=model_keypoints(report['checkpoint']).get('keypoint_names'))
    test_loader = build_loader(cfg, 'test')
    report['float_metrics'] = evaluate(model, cfg, 'test', test_loader)
    base = scalar_metrics(report['float_metrics'])
    for entry in report['exports']:
        if not get_target(entry['target']).runs_on_host:
            continue
        log(f'export: evaluating {osp.basename(entry["file"])}')
        backend_model = BackendModel(model, entry['file'], input_hw=hw, check_outputs=False)
        t0 = time.perf_counter()
        entry['metrics'] = evaluate(backend_model, cfg, 'test', test_loader)
        entry['eval_seconds'] = round(time.perf_counter() - t0, 2)
        got = scalar_metrics(entry['metrics'])
        entry['metric_delta'] = {k: got[k] - base[k] for k in base if k in got}


def _take(loader, n: int):
    for i, data in enumerate(loader):
        if i >= n:
            break
        yield data
