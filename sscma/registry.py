"""Registries of the ``sscma`` scope.

Every registry of a kind mmengine knows is a child of mmengine's, so configs with ``default_scope='sscma'``
find our components first and reach other packages' ones as ``mmdet.X``, ``mmpose.X`` or ``mmpretrain.X``.
``locations`` lets the registry import our modules lazily the first time it is asked for something. The
deploy registries (export targets, task adapters) have no mmengine counterpart and stand alone.
"""
import importlib
import sys

from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOG_PROCESSORS as MMENGINE_LOG_PROCESSORS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import TASK_UTILS as MMENGINE_TASK_UTILS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISBACKENDS as MMENGINE_VISBACKENDS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import WEIGHT_INITIALIZERS as MMENGINE_WEIGHT_INITIALIZERS
from mmengine.registry import Registry as MMEngineRegistry

__all__ = [
    'RUNNERS', 'LOOPS', 'HOOKS', 'LOG_PROCESSORS', 'DATASETS', 'DATA_SAMPLERS', 'TRANSFORMS', 'MODELS',
    'MODEL_WRAPPERS', 'WEIGHT_INITIALIZERS', 'OPTIMIZERS', 'OPTIM_WRAPPERS', 'OPTIM_WRAPPER_CONSTRUCTORS',
    'PARAM_SCHEDULERS', 'METRICS', 'EVALUATOR', 'TASK_UTILS', 'VISUALIZERS', 'VISBACKENDS', 'EXPORT_TARGETS',
    'TASKS'
]

# Packages whose components an unscoped name may fall back to, in this order after the caller's package.
FALLBACK_SCOPES = ('mmdet', 'mmpose', 'mmpretrain')


def _caller_scopes():
    """FALLBACK_SCOPES with the package of the nearest calling frame first (so mmdet code gets mmdet's)."""
    frame = sys._getframe(2)
    while frame is not None:
        top = frame.f_globals.get('__name__', '').split('.')[0]
        if top in FALLBACK_SCOPES:
            return (top, ) + tuple(s for s in FALLBACK_SCOPES if s != top)
        frame = frame.f_back
    return FALLBACK_SCOPES


class Registry(MMEngineRegistry):
    """mmengine ``Registry`` whose unscoped lookups fall back to mmdet / mmpose / mmpretrain.

    With ``default_scope='sscma'``, mmengine resolves every build through our registries, including the
    ones other packages make internally with unscoped names (mmdet's assigners build
    ``dict(type='BboxOverlaps2D')``). When a name is neither ours nor mmengine's, it is looked up in the
    calling package first, then in the others.
    """

    def get(self, key: str):
        obj = super().get(key)
        if obj is not None or not isinstance(key, str) or '.' in key or self.scope != 'sscma':
            return obj
        root = self._get_root_registry()
        for scope in _caller_scopes():
            child = root._children.get(scope)
            if child is None:
                try:
                    importlib.import_module(f'{scope}.registry')
                except ImportError:
                    continue
                child = root._children.get(scope)
            if child is not None:
                obj = child.get(key)
                if obj is not None:
                    return obj
        return None


RUNNERS = Registry('runner', parent=MMENGINE_RUNNERS, locations=['sscma.engine'])
LOOPS = Registry('loop', parent=MMENGINE_LOOPS, locations=['sscma.engine'])
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, locations=['sscma.engine'])
LOG_PROCESSORS = Registry('log processor', parent=MMENGINE_LOG_PROCESSORS, locations=['sscma.engine'])
OPTIMIZERS = Registry('optimizer', parent=MMENGINE_OPTIMIZERS, locations=['sscma.engine'])
OPTIM_WRAPPERS = Registry('optim_wrapper', parent=MMENGINE_OPTIM_WRAPPERS, locations=['sscma.engine'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor', parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS, locations=['sscma.engine'])
PARAM_SCHEDULERS = Registry('parameter scheduler', parent=MMENGINE_PARAM_SCHEDULERS, locations=['sscma.engine'])

DATASETS = Registry('dataset', parent=MMENGINE_DATASETS, locations=['sscma.datasets'])
DATA_SAMPLERS = Registry('data sampler', parent=MMENGINE_DATA_SAMPLERS, locations=['sscma.datasets'])
TRANSFORMS = Registry('transform', parent=MMENGINE_TRANSFORMS, locations=['sscma.datasets'])

MODELS = Registry('model', parent=MMENGINE_MODELS, locations=['sscma.models'])
MODEL_WRAPPERS = Registry('model_wrapper', parent=MMENGINE_MODEL_WRAPPERS, locations=['sscma.models'])
WEIGHT_INITIALIZERS = Registry('weight initializer', parent=MMENGINE_WEIGHT_INITIALIZERS,
                               locations=['sscma.models'])
TASK_UTILS = Registry('task util', parent=MMENGINE_TASK_UTILS, locations=['sscma.models'])

METRICS = Registry('metric', parent=MMENGINE_METRICS, locations=['sscma.evaluation'])
EVALUATOR = Registry('evaluator', parent=MMENGINE_EVALUATOR, locations=['sscma.evaluation'])

VISUALIZERS = Registry('visualizer', parent=MMENGINE_VISUALIZERS, locations=['sscma.visualization'])
VISBACKENDS = Registry('vis_backend', parent=MMENGINE_VISBACKENDS, locations=['sscma.visualization'])

# Components with no mmengine counterpart: plain registries of the sscma scope.
# EXPORT_TARGETS: one kind of exported file each (``--targets onnx``), see sscma.deploy.targets.base.ExportTarget.
EXPORT_TARGETS = MMEngineRegistry('export target', scope='sscma', locations=['sscma.deploy.targets'])
# TASKS: what a kind of model means (records, drawing, exported output, parity), keyed by model class name
# (``Fomo``, ``ImageClassifier``), see sscma.tasks.Task.
TASKS = MMEngineRegistry('task', scope='sscma', locations=['sscma.tasks'])
