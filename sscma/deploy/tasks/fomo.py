"""FOMO centroid detectors: per-cell probabilities out, ``FomoHead.predict_by_probs`` outside the graph."""
from typing import Any, Dict, List, Sequence, Tuple

import torch
from torch import nn

from sscma.registry import TASK_ADAPTERS
from sscma.utils import ExportError

from .base import TaskAdapter, agreement


@TASK_ADAPTERS.register_module('Fomo')
class FomoAdapter(TaskAdapter):
    """The graph gives ``(B, num_classes + 1, H / stride, W / stride)`` softmax probabilities; decoding them
    is exactly ``Fomo.predict`` (:meth:`FomoHead.predict_by_probs`).

    Parity: per-cell argmax agreement (the class each cell votes for) and centroid agreement: the decoded
    centroids (cell and class) both sides find, ``2 |A and B| / (|A| + |B|)``.
    """
    task = 'fomo'
    postprocessing = 'outside the graph: FomoHead.predict_by_probs (score_thr, 3x3 peak, cell centre)'
    parity_columns = (('argmax agreement', 'argmax_agreement', 'percent'),
                      ('centroid agreement', 'centroid_agreement', 'percent'))

    def check_input(self, model: nn.Module, hw: Tuple[int, int]) -> None:
        stride = model.head.stride
        if hw[0] % stride or hw[1] % stride:
            raise ExportError(f'--input-shape {hw[0]} {hw[1]}: FOMO needs H and W that are multiples of its '
                              f'output stride {stride}')

    def output_meaning(self, model: nn.Module) -> str:
        return 'per-cell probabilities (softmax over background + classes; channel 0 = background)'

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
