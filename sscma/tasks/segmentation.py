"""Semantic segmentors: logits on the stride grid out of the graph; resized to the image and argmax outside."""
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from sscma.registry import TASKS

from .base import Task, agreement, as_numpy


@TASKS.register_module('SemanticSegmentor')
class SegmentationTask(Task):
    """``(B, num_classes, H / stride, W / stride)`` logits; ``SemanticSegmentor.add_predictions`` resizes them
    (bilinear) to each original image and takes the argmax.

    Parity: agreement of the per-cell argmax (the class each cell of the grid votes for).
    """
    task = 'segmentation'
    postprocessing = 'outside the graph: bilinear resize of the logits to the image, argmax per pixel'
    parity_columns = (('cell argmax agreement', 'argmax_agreement', 'percent'), )
    geometric_fields = ('gt_sem_seg', )

    def output_meaning(self, model: nn.Module) -> str:
        return f'class logits per cell of the input (stride {getattr(model, "stride", "?")}), channel 0 = background'

    def check_input(self, model: nn.Module, hw: Tuple[int, int]) -> None:
        from sscma.utils import ExportError
        if tuple(hw) != tuple(model.input_size[::-1]):
            raise ExportError(f'--input-shape {hw[0]} {hw[1]}: the decoder\'s pooling is sized for '
                              f'{model.input_size[1]}x{model.input_size[0]} inputs; set imgsz instead')

    def record(self, sample: Any, meta: Dict[str, Any]) -> Dict[str, Any]:
        """``areas``: per class present, its pixels and share of the image; ``polygons``: the outline of each
        region of a class other than background (original-image pixels, OpenCV's simplified contours)."""
        import cv2
        pred = as_numpy(sample.pred_sem_seg)
        classes = list((meta or {}).get('classes') or [])

        def name(c: int) -> dict:
            return {'label': int(c), 'class': classes[c] if c < len(classes) else str(c)}

        counts = np.bincount(pred.reshape(-1), minlength=len(classes))
        polygons = []
        for c in np.nonzero(counts)[0]:
            if c == 0:
                continue
            contours, _ = cv2.findContours((pred == c).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            polygons += [dict(**name(c), points=ct.reshape(-1, 2).tolist()) for ct in contours if len(ct) >= 3]
        return dict(areas=[dict(**name(c), pixels=int(n), fraction=round(float(n) / pred.size, 5))
                           for c, n in enumerate(counts) if n], polygons=polygons)

    def draw(self, image: np.ndarray, sample: Any, meta: Dict[str, Any], size: int, score_thr: float = 0.0,
             truth: bool = True) -> Optional[np.ndarray]:
        """Predicted classes as coloured areas; with ``truth``, the true mask's outlines in white."""
        from sscma.visualization.drawing import draw_segmentation
        if 'pred_sem_seg' not in sample:
            return None
        true = None
        if truth and 'seg_source' in sample.metainfo:
            from sscma.datasets.segmentation_dataset import read_mask
            true = read_mask(sample.metainfo['seg_source'], sample.metainfo.get('seg_lut'))
        return draw_segmentation(image, as_numpy(sample.pred_sem_seg), true, list((meta or {}).get('classes') or []),
                                 size=size)

    def postprocess(self, model: nn.Module, outputs: torch.Tensor, data_samples: List) -> List:
        return model.add_predictions(outputs, data_samples)

    def parity(self, model: nn.Module, outputs: Sequence[torch.Tensor], references: Sequence[torch.Tensor],
               input_hw: Tuple[int, int]) -> Dict[str, Any]:
        same = sum(int((o.argmax(1) == r.argmax(1)).sum()) for o, r in zip(outputs, references))
        total = sum(int(r.argmax(1).numel()) for r in references)
        return dict(argmax_agreement=agreement(same, total), cells_compared=total)
