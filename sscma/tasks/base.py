"""A task: everything that differs by kind of model, in one object.

A task is registered in :data:`~sscma.registry.TASKS` under the name of the model class it serves (``Fomo``,
``ImageClassifier`` ...); :func:`task_of` walks the model's class hierarchy, so a subclass
(``KnowledgeDistillationClassifier`` is an ``ImageClassifier``) gets its parent's task. The task says what a
prediction is in ``predictions.json`` (:meth:`Task.record`), how a sample and its prediction are drawn
(:meth:`Task.draw`, used by the training PNGs, ``tools/test.py`` and ``tools/inference.py``), which fields of
the ground truth move with the image (:attr:`Task.geometric_fields`, moved by the batch augmentations), what the
exported graph returns, how ``tools/test.py`` turns that into the data samples ``model.predict`` would give,
which post-processing stays outside the graph, and how to compare an exported file with PyTorch in the task's
own terms. Inference, the visualizer, the prediction-vis hook, export and ``tools/test.py`` ask the task; none of
them branches on the kind of model. A model without a task still exports (:class:`Task` itself: the model's
tensor, no evaluation, nothing drawn).
"""
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from sscma.registry import TASKS
from sscma.utils import ExportError

#: ``(report column header, parity key, 'percent' | 'number')``
ParityColumn = Tuple[str, str, str]


class Task:
    """The task of a model nothing more specific is registered for; subclass it for a new task.

    Attributes:
        task (str, optional): The task's name in the export report (``None``: unknown).
        postprocessing (str): What is done outside the graph, for the report.
        parity_columns (tuple): :data:`ParityColumn` s of the measures :meth:`parity` returns, shown in the
            report's table.
    """
    task: Optional[str] = None
    postprocessing: str = 'none available'
    parity_columns: Tuple[ParityColumn, ...] = ()
    geometric_fields: Tuple[str, ...] = ()

    # ------------------------------------------------------------------------ predictions, drawn and listed
    def score_threshold(self, model: nn.Module, score_thr: Optional[float]) -> Optional[float]:
        """The threshold ``tools/inference.py`` keeps predictions at (``--score-thr``, or the task's default),
        applied to the model too where it decodes with one; ``None``: keep all."""
        return score_thr

    def record(self, sample: Any, meta: Dict[str, Any]) -> Dict[str, Any]:
        """What ``predictions.json`` holds for one image or frame (coordinates in original-image pixels; class
        names from ``meta['classes']``)."""
        return {}

    def summary(self, records: List[Dict[str, Any]]) -> List[str]:
        """Lines ``tools/inference.py`` prints about its ``predictions.json`` records (none by default)."""
        return []

    def draw(self, image: np.ndarray, sample: Any, meta: Dict[str, Any], size: int, score_thr: float = 0.0,
             truth: bool = True) -> Optional[np.ndarray]:
        """``image`` (RGB, the original file) with the sample's predictions, and with ``truth`` its ground truth,
        drawn ``size`` pixels on the longer side; ``None``: nothing to draw for this task."""
        return None

    def accepts(self, model: nn.Module) -> bool:
        """Whether this task can serve ``model`` (registered for one of its classes)."""
        return True

    def check_input(self, model: nn.Module, hw: Tuple[int, int]) -> None:
        """Raise :class:`ExportError` when the model cannot take an ``hw`` input (e.g. an output stride)."""

    def graph_output(self, model: nn.Module, out: Any, images: torch.Tensor) -> torch.Tensor:
        """The exported graph's single output from ``model(x, mode='tensor')`` (float32)."""
        if isinstance(out, (tuple, list)):  # single-output models only (FOMO, classifiers)
            out = out[-1]
        return out.float()

    def output_meaning(self, model: nn.Module) -> str:
        """What the values of the graph's output are, for the report."""
        return 'model tensor'

    def output_constants(self, model: nn.Module) -> Dict[str, float]:
        """Numbers firmware needs to read the output beyond its shape (e.g. FOMO's cell size and score
        threshold): in the export metadata and, upper-cased, as ``#define``s of the C header."""
        return {}

    def calibration_images(self, model: nn.Module, batches: List[torch.Tensor]) -> List[torch.Tensor]:
        """The raw-pixel batches int8 export calibrates on, from the training images ``batches`` (as they are,
        unless the task's output needs other inputs to show its range)."""
        return batches

    def loss_dataset(self, dataset: dict) -> Optional[dict]:
        """The validation dataset config whose samples the model's loss can be computed on (ground truth in the
        network input's coordinates, :class:`~sscma.engine.hooks.ValLossHook`), from the config's ``dataset``;
        ``None``: the task has no validation loss. The validation dataset itself by default."""
        return dataset

    @property
    def evaluable(self) -> bool:
        """Whether :meth:`postprocess` is implemented (exported files can be evaluated)."""
        return type(self).postprocess is not Task.postprocess

    def postprocess(self, model: nn.Module, outputs: torch.Tensor, data_samples: List) -> List:
        """The data samples ``model.predict`` would return, from the graph's ``outputs`` for that batch."""
        raise ExportError(f'evaluating an exported {type(model).__name__} is not supported yet (supported: '
                          f'{", ".join(supported_model_types())})')

    def parity(self, model: nn.Module, outputs: Sequence[torch.Tensor], references: Sequence[torch.Tensor],
               input_hw: Tuple[int, int]) -> Dict[str, Any]:
        """The task's agreement measures between an exported file's ``outputs`` and PyTorch's ``references``
        (batches of graph outputs for the same images); keys as in :attr:`parity_columns`."""
        return {}


def supported_model_types() -> List[str]:
    """Model classes with a registered task that can evaluate exported files."""
    TASKS.import_from_location()
    return [name for name, cls in TASKS.module_dict.items() if cls().evaluable]


def task_of(model: nn.Module) -> Task:
    """The task registered for the nearest class of ``model`` that has one and accepts it."""
    TASKS.import_from_location()
    for cls in type(model).__mro__:
        task_cls = TASKS.module_dict.get(cls.__name__)
        if task_cls is not None:
            task = task_cls()
            if task.accepts(model):
                return task
    return Task()


def task_for_class(model_class: type) -> str:
    """The task name registered for the nearest class of ``model_class`` (``'-'`` when none is)."""
    TASKS.import_from_location()
    for cls in model_class.__mro__:
        task_cls = TASKS.module_dict.get(cls.__name__)
        if task_cls is not None:
            return task_cls.task or '-'
    return '-'


def named(label: int, meta: Dict[str, Any]) -> Dict[str, Any]:
    """``{'label': 3, 'class': 'cat'}`` (the id as text when ``meta`` has no name for it)."""
    classes = list((meta or {}).get('classes') or [])
    return {'label': int(label), 'class': classes[label] if 0 <= label < len(classes) else str(label)}


def as_numpy(value: Any) -> np.ndarray:
    """A tensor, mmdet box type or array as a numpy array."""
    value = getattr(value, 'tensor', value)
    return np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value)


def agreement(same: int, total: int) -> float:
    """``same / total``; 1.0 when there was nothing to compare (both sides found nothing)."""
    return same / total if total else 1.0
