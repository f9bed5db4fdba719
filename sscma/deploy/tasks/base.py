"""What an exported graph of one kind of model means, and how to turn its output into predictions.

A task adapter is registered in :data:`~sscma.registry.TASK_ADAPTERS` under the name of the model class it
serves (``Fomo``, ``ImageClassifier`` ...); :func:`task_adapter` walks the model's class hierarchy, so a
subclass (``KnowledgeDistillationClassifier`` is an ``ImageClassifier``) gets its parent's adapter. The
adapter says what the traced graph returns, how ``tools/test.py`` turns that into the data samples
``model.predict`` would give, which post-processing stays outside the graph, and how to compare an exported
file with PyTorch in the task's own terms. A model without an adapter still exports (:class:`TaskAdapter`
itself: the model's tensor, no evaluation).
"""
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from sscma.registry import TASK_ADAPTERS
from sscma.utils import ExportError

#: ``(report column header, parity key, 'percent' | 'number')``
ParityColumn = Tuple[str, str, str]


class TaskAdapter:
    """The adapter of a model nothing more specific is registered for; subclass it for a task.

    Attributes:
        task (str, optional): The task's name in the export report (``None``: unknown).
        postprocessing (str): What is done outside the graph, for the report.
        parity_columns (tuple): :data:`ParityColumn` s of the measures :meth:`parity` returns, shown in the
            report's table.
    """
    task: Optional[str] = None
    postprocessing: str = 'none available'
    parity_columns: Tuple[ParityColumn, ...] = ()

    def accepts(self, model: nn.Module) -> bool:
        """Whether this adapter can serve ``model`` (registered for one of its classes)."""
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

    @property
    def evaluable(self) -> bool:
        """Whether :meth:`postprocess` is implemented (exported files can be evaluated)."""
        return type(self).postprocess is not TaskAdapter.postprocess

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
    """Model classes with a registered adapter that can evaluate exported files."""
    TASK_ADAPTERS.import_from_location()
    return [name for name, cls in TASK_ADAPTERS.module_dict.items() if cls().evaluable]


def task_adapter(model: nn.Module) -> TaskAdapter:
    """The adapter registered for the nearest class of ``model`` that has one and accepts it."""
    TASK_ADAPTERS.import_from_location()
    for cls in type(model).__mro__:
        adapter_cls = TASK_ADAPTERS.module_dict.get(cls.__name__)
        if adapter_cls is not None:
            adapter = adapter_cls()
            if adapter.accepts(model):
                return adapter
    return TaskAdapter()


def agreement(same: int, total: int) -> float:
    """``same / total``; 1.0 when there was nothing to compare (both sides found nothing)."""
    return same / total if total else 1.0
