"""Anomaly detectors: the graph gives the anomaly map (1.0 = the stored threshold); the image score, its
maximum, is taken outside."""
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from sscma.registry import TASKS

from .base import Task, agreement, as_numpy


@TASKS.register_module('GaussianAnomalyDetector')
class AnomalyTask(Task):
    """``(B, 1, H / stride, W / stride)`` maps; ``GaussianAnomalyDetector.add_predictions`` takes each map's maximum
    as the image score (anomalous at >= 1.0).

    int8 calibration: int8 ranges come from the training images, which are all normal, so the map's range would
    end at the largest value a normal cell reaches and every anomaly would saturate there, below the threshold
    when that value is under 1.0. The calibration set also holds each image turned by 180 degrees with red and
    blue swapped: natural pixels (the backbone's ranges stay those of real images) that no cell has seen there,
    so the map's int8 range reaches past the threshold. Pasted patches or dark blots, tried instead, widen the
    backbone's ranges and measured worse (docs/anomaly.md).

    Parity: agreement of the normal / anomalous decisions and the largest difference of image scores.
    """
    task = 'anomaly'
    postprocessing = 'outside the graph: image score = maximum of the map; anomalous when >= 1.0'
    parity_columns = (('decision agreement', 'decision_agreement', 'percent'),
                      ('score difference max', 'score_diff_max', 'number'))

    def loss_dataset(self, dataset: dict) -> Optional[dict]:
        """None: the model is fitted in one pass, not trained by a loss."""
        return None

    def output_meaning(self, model: nn.Module) -> str:
        return ('anomaly map per cell of the input (stride {}), divided by the stored threshold: >= 1.0 is '
                'anomalous'.format(getattr(model, 'stride', '?')))

    def output_constants(self, model: nn.Module) -> Dict[str, float]:
        stride = getattr(model, 'stride', None)
        return dict(**({} if stride is None else dict(output_stride=int(stride))), score_threshold=1.0)

    def check_input(self, model: nn.Module, hw: Tuple[int, int]) -> None:
        from sscma.utils import ExportError
        if tuple(hw) != tuple(model.input_size[::-1]):
            raise ExportError(f'--input-shape {hw[0]} {hw[1]}: the anomaly model was fitted on {model.input_size[1]}x'
                              f'{model.input_size[0]} inputs (its statistics are per cell); export at that size')

    def record(self, sample: Any, meta: Dict[str, Any]) -> Dict[str, Any]:
        """``score`` (1.0 = threshold), ``anomalous``, and ``cells_above`` (cells of the map at or above 1.0)."""
        amap = as_numpy(sample.anomaly_map)
        return dict(score=round(float(sample.anomaly_score), 4), anomalous=bool(sample.anomaly_score >= 1.0),
                    cells_above=int((amap >= 1.0).sum()), map_shape=list(amap.shape))

    def summary(self, records: List[Dict[str, Any]]) -> List[str]:
        """One line per image (the first 50), then the count: ``file: ANOMALOUS 2.21`` (1.0 = threshold)."""
        lines = [f'{r.get("file")}{"#" + str(r["frame"]) if "frame" in r else ""}: '
                 f'{"ANOMALOUS" if r["anomalous"] else "normal"} {r["score"]:.3f}' for r in records[:50]]
        if len(records) > 50:
            lines.append(f'... {len(records) - 50} more in predictions.json')
        flagged = sum(1 for r in records if r['anomalous'])
        return lines + [f'anomalous: {flagged} of {len(records)} (score = the map\'s maximum; 1.0 = the threshold)']

    def draw(self, image: np.ndarray, sample: Any, meta: Dict[str, Any], size: int, score_thr: float = 0.0,
             truth: bool = True) -> Optional[np.ndarray]:
        """Heat map, decision boundary (white), true defect (green, with ``truth``), verdict and score."""
        from sscma.evaluation.metrics.anomaly_metric import read_mask
        from sscma.visualization.drawing import draw_anomaly_map
        if 'anomaly_map' not in sample:
            return None
        score = float(sample.anomaly_score)
        text = f'{"ANOMALOUS" if score >= 1.0 else "normal"} {score:.2f}'
        mask = None
        if truth and sample.get('mask_path'):
            mask = read_mask(sample.mask_path, image.shape[:2])
        if truth and 'gt_label' in sample:
            text += f' (gt {"anomalous" if int(as_numpy(sample.gt_label).reshape(-1)[0]) else "normal"})'
        return draw_anomaly_map(image, as_numpy(sample.anomaly_map), mask, text, size=size)

    def calibration_images(self, model: nn.Module, batches: List[torch.Tensor]) -> List[torch.Tensor]:
        """``batches`` and the same images turned by 180 degrees with the first and last channels swapped."""
        return list(batches) + [b.flip(-1, -2).flip(1) for b in batches]

    def postprocess(self, model: nn.Module, outputs: torch.Tensor, data_samples: List) -> List:
        return model.add_predictions(outputs, data_samples)

    def parity(self, model: nn.Module, outputs: Sequence[torch.Tensor], references: Sequence[torch.Tensor],
               input_hw: Tuple[int, int]) -> Dict[str, Any]:
        score_o = torch.cat([o.flatten(1).max(1).values for o in outputs])
        score_r = torch.cat([r.flatten(1).max(1).values for r in references])
        same = int(((score_o >= 1.0) == (score_r >= 1.0)).sum())
        return dict(decision_agreement=agreement(same, int(score_r.numel())), images_compared=int(score_r.numel()),
                    score_diff_max=float((score_o - score_r).abs().max()))
