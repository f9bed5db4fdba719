"""FOMO centroid detectors: per-cell probabilities out, ``FomoHead.predict_by_probs`` outside the graph."""
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from sscma.registry import TASKS
from sscma.utils import ExportError

from .base import Task, agreement, as_numpy
from .detection import annotations_before_geometry, detection_record, draw_detection_sample


@TASKS.register_module('Fomo')
class FomoTask(Task):
    """The graph gives ``(B, num_classes + 1, H / stride, W / stride)`` softmax probabilities; decoding them
    is exactly ``Fomo.predict`` (:meth:`FomoHead.predict_by_probs`).

    Parity: per-cell argmax agreement (the class each cell votes for) and centroid agreement: the decoded
    centroids (cell and class) both sides find, ``2 |A and B| / (|A| + |B|)``.
    """
    task = 'fomo'
    postprocessing = 'outside the graph: FomoHead.predict_by_probs (score_thr, 3x3 peak, cell centre)'
    parity_columns = (('argmax agreement', 'argmax_agreement', 'percent'),
                      ('centroid agreement', 'centroid_agreement', 'percent'))
    geometric_fields = ('bboxes', )

    def loss_dataset(self, dataset: dict) -> Optional[dict]:
        return annotations_before_geometry(dataset)

    def score_threshold(self, model: nn.Module, score_thr: Optional[float]) -> Optional[float]:
        """``--score-thr`` is also the head's decoding threshold (cells below it are never decoded)."""
        if score_thr is not None:
            model.head.score_thr = float(score_thr)
        return score_thr

    def record(self, sample: Any, meta: Dict[str, Any]) -> Dict[str, Any]:
        """``centroids``: ``point`` (x, y), ``label``, ``class``, ``score``."""
        return detection_record(sample, meta, 'centroids', 'point', as_numpy(sample.pred_instances.points).reshape(-1, 2))

    def draw(self, image: np.ndarray, sample: Any, meta: Dict[str, Any], size: int, score_thr: float = 0.0,
             truth: bool = True) -> Optional[np.ndarray]:
        """True boxes (with ``truth``) and predicted centroids with class and score."""
        return draw_detection_sample(image, sample, meta, size, score_thr, boxes=False)

    def check_input(self, model: nn.Module, hw: Tuple[int, int]) -> None:
        stride = model.head.stride
        if hw[0] % stride or hw[1] % stride:
            raise ExportError(f'--input-shape {hw[0]} {hw[1]}: FOMO needs H and W that are multiples of its '
                              f'output stride {stride}')

    def output_meaning(self, model: nn.Module) -> str:
        return (f'per-cell probabilities (softmax over background + classes; channel 0 = background); a cell is '
                f'{model.head.stride}x{model.head.stride} input pixels; an object: a class probability above '
                f'{float(model.head.score_thr):g} that is the highest of its 3x3 cells, at the cell centre')

    def output_constants(self, model: nn.Module) -> Dict[str, float]:
        return dict(output_stride=int(model.head.stride), score_threshold=float(model.head.score_thr))

    def postprocess(self, model: nn.Module, outputs: torch.Tensor, data_samples: List) -> List:
        results = model.head.predict_by_probs(outputs, [s.metainfo for s in data_samples])
        for sample, res in zip(data_samples, results):
            sample.pred_instances = res
            sample.set_metainfo(dict(fomo_stride=model.head.stride))
        return data_samples

    def parity(self, model: nn.Module, outputs: Sequence[torch.Tensor], references: Sequence[torch.Tensor],
               input_hw: Tuple[int, int]) -> Dict[str, Any]:
        cells = sum(int((o.argmax(1) == r.argmax(1)).sum()) for o, r in zip(outputs, references))
        n_cells = sum(int(r.argmax(1).numel()) for r in references)
        found, both = 0, 0
        for out, ref in zip(outputs, references):
            metas = [{}] * out.shape[0]
            for a, b in zip(model.head.predict_by_probs(out, metas, rescale=False),
                            model.head.predict_by_probs(ref, metas, rescale=False)):
                sa, sb = _centroids(a), _centroids(b)
                both += 2 * len(sa & sb)
                found += len(sa) + len(sb)
        return dict(argmax_agreement=cells / max(n_cells, 1), argmax_compared=n_cells,
                    centroid_agreement=agreement(both, found), centroids_compared=found)


def _centroids(result) -> set:
    """``{(x, y, label)}`` of decoded centroids (cell centres in input pixels)."""
    points = result.points.round().long().tolist()
    return {(x, y, int(label)) for (x, y), label in zip(points, result.labels.tolist())}
