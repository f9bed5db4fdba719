"""Image classifiers (mmpretrain ``ImageClassifier`` and subclasses): logits out, ClsHead's post-processing."""
from typing import Any, Dict, List, Sequence, Tuple

import torch
from torch import nn

from sscma.registry import TASK_ADAPTERS

from .base import TaskAdapter


@TASK_ADAPTERS.register_module('ImageClassifier')
class ClassificationAdapter(TaskAdapter):
    """The graph gives class logits; ``tools/test.py`` runs mmpretrain ``ClsHead``'s softmax / argmax.

    Parity: how often the exported file and PyTorch pick the same class (per image).
    """
    task = 'classification'
    postprocessing = 'outside the graph: softmax / argmax (mmpretrain ClsHead)'
    parity_columns = (('argmax agreement', 'argmax_agreement', 'percent'), )

    def accepts(self, model: nn.Module) -> bool:
        return hasattr(getattr(model, 'head', None), '_get_predictions')

    def output_meaning(self, model: nn.Module) -> str:
        return 'class logits (no softmax)'

    def postprocess(self, model: nn.Module, outputs: torch.Tensor, data_samples: List) -> List:
        return model.head._get_predictions(outputs, data_samples)  # ClsHead.predict after its forward

    def parity(self, model: nn.Module, outputs: Sequence[torch.Tensor], references: Sequence[torch.Tensor],
               input_hw: Tuple[int, int]) -> Dict[str, Any]:
        same = sum(int((o.argmax(1) == r.argmax(1)).sum()) for o, r in zip(outputs, references))
        total = sum(int(r.shape[0]) for r in references)
        return dict(argmax_agreement=same / max(total, 1), argmax_compared=total)
