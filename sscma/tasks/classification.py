"""Image classifiers (mmpretrain ``ImageClassifier`` and subclasses): logits out, ClsHead's post-processing."""
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from sscma.registry import TASKS

from .base import Task, as_numpy, named

TOPK = 5  # classes listed per image in predictions.json


@TASKS.register_module('ImageClassifier')
class ClassificationTask(Task):
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

    @staticmethod
    def _label_scores(sample: Any):
        label = int(as_numpy(sample.pred_label).reshape(-1)[0])
        scores = as_numpy(sample.pred_score).reshape(-1) if 'pred_score' in sample else np.zeros(0)
        return label, scores

    def record(self, sample: Any, meta: Dict[str, Any]) -> Dict[str, Any]:
        """``class``, ``label``, ``score`` and the ``topk`` classes with their scores."""
        label, scores = self._label_scores(sample)
        top = np.argsort(-scores)[:TOPK] if len(scores) else [label]
        return dict(**named(label, meta), score=float(scores[label]) if len(scores) else None,
                    topk=[dict(**named(int(k), meta), score=float(scores[k]) if len(scores) else None) for k in top])

    def draw(self, image: np.ndarray, sample: Any, meta: Dict[str, Any], size: int, score_thr: float = 0.0,
             truth: bool = True) -> Optional[np.ndarray]:
        """The predicted class and its score as a caption (with ``truth``: the true class after it)."""
        from sscma.visualization.drawing import draw_caption
        label, scores = self._label_scores(sample)
        text = f'{named(label, meta)["class"]} {scores[label] if len(scores) else float("nan"):.2f}'
        if truth and 'gt_label' in sample:
            text += f' (gt {named(int(as_numpy(sample.gt_label).reshape(-1)[0]), meta)["class"]})'
        return draw_caption(image, text, size=size)

    def postprocess(self, model: nn.Module, outputs: torch.Tensor, data_samples: List) -> List:
        return model.head._get_predictions(outputs, data_samples)  # ClsHead.predict after its forward

    def parity(self, model: nn.Module, outputs: Sequence[torch.Tensor], references: Sequence[torch.Tensor],
               input_hw: Tuple[int, int]) -> Dict[str, Any]:
        same = sum(int((o.argmax(1) == r.argmax(1)).sum()) for o, r in zip(outputs, references))
        total = sum(int(r.shape[0]) for r in references)
        return dict(argmax_agreement=same / max(total, 1), argmax_compared=total)
