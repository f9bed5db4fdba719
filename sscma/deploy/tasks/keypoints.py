"""Keypoint regressors (PFLD): normalised coordinates out, scaled to the image outside the graph."""
from typing import Any, Dict, List, Sequence, Tuple

import torch
from torch import nn

from sscma.registry import TASK_ADAPTERS

from .base import TaskAdapter


@TASK_ADAPTERS.register_module('KeypointRegressor')
class KeypointAdapter(TaskAdapter):
    """The graph gives ``(B, 2K)`` keypoints in [0, 1] of the input; ``KeypointRegressor.add_pred_to_datasample``
    scales them to the image.

    Parity: distance between the exported file's and PyTorch's keypoints, in input pixels (mean and max).
    """
    task = 'keypoints'
    postprocessing = ('outside the graph: multiply by the image size (KeypointRegressor.add_pred_to_datasample)')
    parity_columns = (('keypoint distance mean (px)', 'keypoint_distance_mean', 'number'),
                      ('keypoint distance max (px)', 'keypoint_distance_max', 'number'))

    def output_meaning(self, model: nn.Module) -> str:
        return 'keypoints (x0, y0, x1, y1, ...) in [0, 1] of the input width / height'

    def postprocess(self, model: nn.Module, outputs: torch.Tensor, data_samples: List) -> List:
        return model.add_pred_to_datasample(outputs.reshape(outputs.shape[0], -1, 2), data_samples)

    def parity(self, model: nn.Module, outputs: Sequence[torch.Tensor], references: Sequence[torch.Tensor],
               input_hw: Tuple[int, int]) -> Dict[str, Any]:
        size = torch.tensor([input_hw[1], input_hw[0]], dtype=torch.float32)
        dist = torch.cat([((o.reshape(o.shape[0], -1, 2) - r.reshape(r.shape[0], -1, 2)) * size).norm(dim=-1).flatten()
                          for o, r in zip(outputs, references)])
        return dict(keypoint_distance_mean=float(dist.mean()), keypoint_distance_max=float(dist.max()),
                    keypoints_compared=int(dist.numel()))
