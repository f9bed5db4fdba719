"""What ``tools/train.py`` and ``tools/test.py`` do, importable (the CLI, pruning and :class:`sscma.Model` call it)."""
import itertools
import os
import os.path as osp
import time
from typing import Any, Dict, Optional

from mmengine.config import Config

from sscma.utils import ConfigError, load_config, register_all_modules
from sscma.utils.checkpoint import checkpoint_class_names
from sscma.utils.class_names import bind_model_classes

from .data_defaults import data_defaults, resumed_choices
from .distillation import resolve_teacher
from .distributed import configure_distributed


def _default_work_dir(config: str) -> str:
    return osp.join('work_dirs', osp.splitext(osp.basename(config))[0])


def _resumed_checkpoint(resume: Optional[str], work_dir: str) -> Optional[str]:
    """The checkpoint ``--resume`` continues from: ``resume`` itself, or for ``'auto'`` the one the work dir's
    ``last_checkpoint`` names; ``None`` without ``resume``."""
    if not resume:
        return None
    if resume != 'auto':
        if not osp.isfile(resume):
            raise ConfigError(f'--resume {resume}: no such checkpoint file')
        return resume
    last = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(last):
        raise ConfigError(f'--resume: nothing to resume in {work_dir} (no last_checkpoint file); start without '
                          '--resume, or give --resume PATH/TO/CHECKPOINT.pth')
    with open(last, encoding='utf-8') as f:
        named = f.read().strip()
    if not osp.isfile(named):
        raise ConfigError(f'--resume: {last} names {named!r}, which does not exist; give --resume PATH')
    return named


def add_hook(cfg: Config, hook_type: str, **kwargs) -> None:
    """Append ``dict(type=hook_type, **kwargs)`` to ``cfg.custom_hooks`` unless the config already has one."""
    hooks = list(cfg.get('custom_hooks') or [])
    if not any(str(h.get('type', '')).split('.')[-1] == hook_type for h in hooks):
        hooks.append(dict(type=hook_type, **kwargs))
    cfg.custom_hooks = hooks


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX), which ``--amp`` on CPU needs."""
    import torch
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def apply_amp(cfg: Config) -> None:
    """``--amp``: fp16 autocast with dynamic loss scaling on GPUs (mmengine's ``AmpOptimWrapper``), bfloat16
    autocast on CPUs that compute it natively (:class:`~sscma.engine.CpuBf16OptimWrapper`).

    Raises:
        ConfigError: no GPU and no bfloat16 CPU, or a config whose optimizer wrapper is not the plain one.
    """
    import torch
    wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if wrapper not in ('OptimWrapper', 'AmpOptimWrapper', 'CpuBf16OptimWrapper'):
        raise ConfigError(f'--amp needs optim_wrapper.type OptimWrapper, the config has {wrapper}')
    if torch.cuda.is_available():
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    elif cpu_has_bf16():
        cfg.optim_wrapper.type = 'CpuBf16OptimWrapper'
    else:
        raise ConfigError('--amp needs a GPU (fp16) or a CPU with native bfloat16 (AVX512-BF16 or AMX); this '
                          'machine has neither: train without --amp')


def prepare_train_config(config: str, work_dir: Optional[str] = None, cfg_options: Optional[Dict[str, Any]] = None,
                         resume: Optional[str] = None, amp: bool = False, auto_scale_lr: bool = False,
                         launcher: str = 'none', load_from: Optional[str] = None, qat: bool = False) -> Config:
    """Load ``config`` with overrides and apply the OpenMMLab command-line flags.

    Args:
        config (str): Config file.
        work_dir (str, optional): Output folder; default ``work_dirs/<config name>``.
        cfg_options (dict, optional): Overrides; top-level variables propagate (see ``load_config``).
        resume (str, optional): ``'auto'`` resumes from the work dir's last checkpoint, a path from that file.
        amp (bool): Mixed precision (:func:`apply_amp`: fp16 on GPUs, bfloat16 on CPUs that have it).
        auto_scale_lr (bool): Scale the lr by real batch size / ``auto_scale_lr.base_batch_size``.
        launcher (str): ``'none'``, ``'pytorch'`` (torchrun; the process group is started here, see
            :func:`~sscma.apis.distributed.configure_distributed`), ``'slurm'`` or ``'mpi'``.
        load_from (str, optional): Checkpoint whose weights initialise the model (transfer learning).
        qat (bool): Quantisation-aware fine-tuning of ``load_from`` (``QuantizationAwareTrainingHook``).
    """
    register_all_modules()
    cfg = load_config(config, cfg_options)
    work_dir = work_dir or cfg.get('work_dir') or _default_work_dir(config)
    resumed = _resumed_checkpoint(resume, work_dir)
    if resumed:  # the choices the data rules made for the run go on with it (they may change the architecture)
        chosen, why = resumed_choices(cfg, cfg_options, resumed)
    else:
        chosen, why = data_defaults(cfg, cfg_options)
    if chosen:  # in the options: every checkpoint carries the choice
        cfg_options = {**(cfg_options or {}), **chosen}
        cfg = load_config(config, cfg_options)
    if why:
        from mmengine.logging import MMLogger
        MMLogger.get_current_instance().info(f'data-following defaults: {why}')
    cfg.work_dir = work_dir
    if isinstance((cfg.get('default_hooks') or {}).get('config_source'), dict):
        cfg.default_hooks.config_source.options = dict(cfg_options or {})  # carried into every checkpoint
    if load_from:
        if not osp.isfile(load_from):
            raise ConfigError(f'--load-from {load_from}: no such checkpoint file')
        cfg.load_from = load_from
    if resumed:
        cfg.resume = True
        cfg.load_from = None if resume == 'auto' else resumed
    start = resumed or load_from
    if start:  # the datasets number their classes in the checkpoint's order (by name)
        classes = checkpoint_class_names(start)
        if classes:
            bind_model_classes(cfg, classes, start, ('train_dataloader', 'val_dataloader', 'test_dataloader'),
                               mode='name' if resume else 'transfer')
    if qat:
        if not (load_from or resume):
            raise ConfigError('--qat fine-tunes a trained float model: give its checkpoint with --load-from '
                              '(e.g. --qat --load-from work_dirs/<run>/best_*.pth --cfg-options max_epochs=10)')
        if amp:
            raise ConfigError('--qat and --amp cannot be combined: fake int8 rounding needs float32 training')
        add_hook(cfg, 'QuantizationAwareTrainingHook')
    if amp:
        apply_amp(cfg)
    if auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise ConfigError(f'--auto-scale-lr needs auto_scale_lr.base_batch_size in {config}')
        cfg.auto_scale_lr.enable = True  # mmengine scales by batch_size x world size / base_batch_size
    configure_distributed(cfg, launcher)
    cfg.model = resolve_teacher(cfg.model)  # a distillation config names its teacher's config file
    teacher = cfg.model.get('teacher_checkpoint') if isinstance(cfg.model, dict) else None
    if teacher:  # the student learns the teacher's outputs: its labels are numbered in the teacher's order
        bind_model_classes(cfg, checkpoint_class_names(teacher), teacher,
                           ('train_dataloader', 'val_dataloader', 'test_dataloader'))
    return cfg


def exported_model_config(cfg: Config, model_file: str) -> Optional[dict]:
    """The model config that runs ``model_file`` when it is a file exported by ``tools/export.py`` (any
    registered export target): ``BackendModel`` around the config's model, which gives the structure and the
    post-processing while the file gives the outputs. ``None`` for anything else (a ``.pth`` checkpoint).

    ``tools/test.py`` and ``tools/inference.py`` both build exported files through this.
    """
    from sscma.deploy import backend_kind, config_input_hw
    if not backend_kind(model_file):
        return None
    return dict(type='BackendModel', model=cfg.model, backend_file=model_file, input_hw=config_input_hw(cfg))


def prepare_test_config(config: str, checkpoint: str, work_dir: Optional[str] = None,
                        cfg_options: Optional[Dict[str, Any]] = None, launcher: str = 'none',
                        out: Optional[str] = None, runtime: Optional[str] = None) -> Config:
    """Load ``config`` for evaluating ``checkpoint`` on the config's test split.

    The test dataset numbers its classes in the model's order, matched by name (the checkpoint's or the
    exported file's class names; see :func:`~sscma.utils.class_names.bind_model_classes`).

    With ``out`` (a ``.json`` path), every image's predictions are also written there
    (:class:`~sscma.evaluation.PredictionDump`, original-image pixels).

    ``checkpoint`` may also be a file exported by ``tools/export.py`` (any registered export target: ``.onnx``,
    TorchScript ``.pt``, ``.tflite`` ...): the model then becomes ``BackendModel`` (the config's model for
    structure and post-processing, the file for inference) and nothing is loaded as a checkpoint.
    """
    register_all_modules()
    if not osp.isfile(checkpoint):
        raise ConfigError(f'checkpoint file not found: {checkpoint}')
    cfg = load_config(config, cfg_options)
    cfg.work_dir = work_dir or cfg.get('work_dir') or _default_work_dir(config)
    exported = exported_model_config(cfg, checkpoint)
    if exported:
        if launcher != 'none':
            raise ConfigError(f'--launcher {launcher}: an exported file ({checkpoint}) is evaluated in one '
                              'process; run tools/test.py without torchrun')
        cfg.model = dict(exported, runtime=runtime)
        cfg.load_from = None
    elif runtime:
        raise ConfigError(f'--runtime {runtime}: runs an exported file, not a checkpoint ({checkpoint})')
    else:
        cfg.load_from = checkpoint
    for key in ('test_dataloader', 'test_evaluator', 'test_cfg'):
        if cfg.get(key) is None:
            raise ConfigError(f'{config} has no {key}: tools/test.py needs it')
    from sscma.deploy import model_class_names
    from sscma.deploy.model_meta import model_keypoints
    bind_model_classes(cfg, model_class_names(checkpoint), checkpoint, ('test_dataloader', ),
                       keypoints=model_keypoints(checkpoint).get('keypoint_names'))
    if out:
        if not out.endswith('.json'):
            raise ConfigError(f'--out {out}: expected a .json file for the predictions')
        metrics = cfg.test_evaluator if isinstance(cfg.test_evaluator, list) else [cfg.test_evaluator]
        cfg.test_evaluator = list(metrics) + [dict(type='PredictionDump', out_file=out)]
    configure_distributed(cfg, launcher)
    return cfg


_RUNS = itertools.count()


def own_instances(cfg: Config, kind: str) -> None:
    """A logger and a visualizer of its own for each runner of this process: mmengine keeps them by experiment
    name, a timestamp by default, so two runs started in the same second (a notebook, pruning's evaluations)
    would share the first one's log folder."""
    name = f'{kind}_{time.strftime("%Y%m%d_%H%M%S")}_{os.getpid()}_{next(_RUNS)}'
    cfg.experiment_name = name
    if isinstance(cfg.get('visualizer'), dict):
        cfg.visualizer['name'] = name


def train_model(config: str, work_dir: Optional[str] = None, cfg_options: Optional[Dict[str, Any]] = None,
                **flags) -> str:
    """Train as ``tools/train.py`` does (``flags``: those of :func:`prepare_train_config`); returns the work dir."""
    from mmengine.runner import Runner

    from sscma.utils import no_partial_output
    cfg = prepare_train_config(config, work_dir, cfg_options, **flags)
    own_instances(cfg, 'train')
    with no_partial_output(cfg.work_dir):
        Runner.from_cfg(cfg).train()
    return cfg.work_dir


def test_model(config: str, checkpoint: str, work_dir: Optional[str] = None,
               cfg_options: Optional[Dict[str, Any]] = None, **flags) -> Dict[str, Any]:
    """Evaluate as ``tools/test.py`` does (``flags``: those of :func:`prepare_test_config`); returns the metrics
    and the test dataset's class names (``metrics``, ``classes``, ``work_dir``)."""
    from mmengine.runner import Runner

    from sscma.utils import no_partial_output
    from sscma.utils.checkpoint import check_checkpoint_fits
    cfg = prepare_test_config(config, checkpoint, work_dir, cfg_options, **flags)
    own_instances(cfg, 'test')
    with no_partial_output(cfg.work_dir):
        runner = Runner.from_cfg(cfg)
        if cfg.model.get('type') == 'BackendModel':  # an exported file: recorded in results.json, not loaded
            runner.cfg.load_from = checkpoint
        else:
            check_checkpoint_fits(runner.model, checkpoint, config, error=ConfigError)
        metrics = runner.test() or {}
    classes = list((getattr(runner.test_dataloader.dataset, 'metainfo', None) or {}).get('classes', []))
    return dict(metrics=metrics, classes=classes, work_dir=cfg.work_dir)
