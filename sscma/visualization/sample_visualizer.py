"""Data samples drawn as tiles (ground truth + predictions) and gathered into one PNG grid."""
import os
import os.path as osp
from typing import List, Optional, Sequence

import cv2
import numpy as np
from mmengine.visualization import Visualizer

from sscma.registry import VISUALIZERS

from .drawing import draw_caption, draw_detections, draw_keypoints, make_grid


def _numpy(value) -> np.ndarray:
    value = value.tensor if hasattr(value, 'tensor') else value  # mmdet box types
    return np.asarray(value.detach().cpu() if hasattr(value, 'detach') else value)


def meter_reading_indices(dataset_meta: Optional[dict]) -> Optional[List[int]]:
    """Indices of the meter's ``center``, ``needle_tip``, ``scale_start`` and ``scale_end`` among
    ``dataset_meta['keypoint_names']``, or ``None`` when the keypoints are not a meter's."""
    from sscma.datasets.meter_builtin import METER_KEYPOINTS
    names = list((dataset_meta or {}).get('keypoint_names') or [])
    wanted = list(METER_KEYPOINTS)
    return [names.index(n) for n in wanted] if set(wanted) <= set(names) else None


@VISUALIZERS.register_module()
class SampleGridVisualizer(Visualizer):
    """Draw a data sample's ground truth and predictions on its image, OpenCV-fast, at a fixed tile size.

    Conventions of the data samples it reads (the same as the metrics'):

    - detections (FOMO ``pred_instances.points``, or the centres of ``pred_instances.bboxes``) and the
      ground-truth boxes in ``gt_instances`` are in original-image pixels (see ``FomoMetric``);
    - keypoints: ``pred_instances.keypoints`` are in original-image pixels, the ground truth in
      ``gt_instances.keypoints`` in network-input pixels, divided by ``scale_factor`` here (see
      ``MeterReadingMetric``).

    ``dataset_meta`` gives the class names and, when its ``keypoint_names`` include the meter's
    ``center``, ``needle_tip``, ``scale_start`` and ``scale_end``, the reading captions.

    Args:
        name (str): Instance name (mmengine ``ManagerMixin``). Defaults to ``'sample_grid_visualizer'``.
        score_thr (float): Hide predicted detections below this score. Defaults to 0.
        show_reading (bool): Caption keypoint tiles with meter readings. Defaults to True.
        size (int): Longer side of a tile in pixels. Defaults to 192.
        cols (int): Tiles per row of a grid. Defaults to 4.
        **kwargs: The rest of mmengine ``Visualizer``'s arguments (``vis_backends``, ``save_dir`` ...).
    """

    def __init__(self, name: str = 'sample_grid_visualizer', score_thr: float = 0.0, show_reading: bool = True,
                 size: int = 192, cols: int = 4, **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.score_thr = score_thr
        self.show_reading = show_reading
        self.size = size
        self.cols = cols

    def _meta(self) -> dict:
        return self.dataset_meta or {}

    def draw_detection_sample(self, image: np.ndarray, sample, size: Optional[int] = None,
                              boxes: bool = False) -> np.ndarray:
        """Ground-truth boxes (thin) and predicted centroids (dots with class and score) on ``image`` (RGB),
        ``size`` pixels on the longer side (default: the tile size); ``boxes`` also draws predicted boxes of
        box detectors (FOMO's cell boxes are not drawn)."""
        classes = list(self._meta().get('classes', []))
        gt = sample.get('gt_instances')
        has_gt = gt is not None and 'bboxes' in gt
        gt_boxes = _numpy(gt.bboxes) if has_gt else np.zeros((0, 4))
        gt_labels = _numpy(gt.labels) if has_gt else np.zeros(0, int)
        pred = sample.pred_instances
        keep = _numpy(pred.scores) >= self.score_thr
        pred_boxes = None
        if 'points' in pred:
            points = _numpy(pred.points)
        else:
            b = _numpy(pred.bboxes).reshape(-1, 4)
            points = np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], 1)
            pred_boxes = b[keep] if boxes else None
        return draw_detections(image, gt_boxes, gt_labels, points[keep], _numpy(pred.labels)[keep],
                               _numpy(pred.scores)[keep], classes, size=size or self.size, pred_boxes=pred_boxes)

    def _reading_indices(self) -> Optional[List[int]]:
        return meter_reading_indices(self._meta())

    def draw_classification_sample(self, image: np.ndarray, sample, size: Optional[int] = None) -> np.ndarray:
        """The predicted class and its score as a caption (``pred_label`` / ``pred_score`` of mmpretrain's
        ``DataSample``)."""
        classes = list(self._meta().get('classes', []))
        label = int(_numpy(sample.pred_label).reshape(-1)[0])
        score = float(_numpy(sample.pred_score).reshape(-1)[label]) if 'pred_score' in sample else float('nan')
        name = classes[label] if label < len(classes) else str(label)
        return draw_caption(image, f'{name} {score:.2f}', size=size or self.size)

    def draw_prediction(self, image: np.ndarray, sample) -> np.ndarray:
        """A sample's predictions alone, at the image's own size (``tools/inference.py``'s annotated images
        and video frames): class caption, centroids, boxes, or keypoints with the meter reading."""
        size = max(image.shape[:2])
        pred = sample.get('pred_instances')
        if pred is not None and 'keypoints' in pred:
            return self.draw_keypoint_sample(image, sample, size=size)
        if pred is None and 'pred_label' in sample:
            return self.draw_classification_sample(image, sample, size=size)
        return self.draw_detection_sample(image, sample, size=size, boxes=True)

    def draw_keypoint_sample(self, image: np.ndarray, sample, size: Optional[int] = None) -> Optional[np.ndarray]:
        """True keypoints (white rings) and predicted ones (coloured dots), the meter reading as caption;
        ``None`` when the sample has no predicted keypoints."""
        if 'pred_instances' not in sample or 'keypoints' not in sample.pred_instances:
            return None
        from sscma.evaluation.metrics.meter_metric import reading_from_keypoints
        pred = np.asarray(sample.pred_instances.keypoints, dtype=np.float64).reshape(-1, 2)
        scale = np.asarray(sample.metainfo.get('scale_factor', (1.0, 1.0))[:2], dtype=np.float64)
        gt_inst = sample.get('gt_instances')
        if gt_inst is not None and 'keypoints' in gt_inst:
            gt = _numpy(gt_inst.keypoints).astype(np.float64).reshape(-1, 2) / scale  # network -> image pixels
            v = gt_inst.get('keypoints_visible')
            vis = None if v is None else _numpy(v).reshape(-1)
        else:
            gt, vis = np.zeros((0, 2)), None
        text = ''
        idx = self._reading_indices()
        link = (idx[0], idx[1]) if idx else ()
        if self.show_reading and idx and max(idx) < len(pred):
            text = f'{reading_from_keypoints(pred[idx]) * 100:.0f}%'
            if max(idx) < len(gt) and (vis is None or (vis[idx] > 0).all()):
                text += f' (gt {reading_from_keypoints(gt[idx]) * 100:.0f}%)'
        return draw_keypoints(image, gt, pred, vis, text, size=size or self.size, link=link)

    def draw_sample(self, image: np.ndarray, sample) -> Optional[np.ndarray]:
        """A keypoint tile for samples with predicted keypoints, else a detection tile."""
        pred = sample.get('pred_instances')
        if pred is not None and 'keypoints' in pred:
            return self.draw_keypoint_sample(image, sample)
        return self.draw_detection_sample(image, sample)

    def add_datasample(self, name: str, image: np.ndarray, data_sample, out_file: Optional[str] = None,
                       step: int = 0, **kwargs) -> None:
        """mmengine's interface: draw one sample, then write it to ``out_file`` or the vis backends."""
        tile = self.draw_sample(image, data_sample)
        if tile is None:
            return
        if out_file:
            cv2.imwrite(out_file, cv2.cvtColor(tile, cv2.COLOR_RGB2BGR))
        else:
            self.add_image(name, tile, step)

    def save_grid(self, tiles: Sequence[np.ndarray], path: str) -> str:
        """Write ``tiles`` as one PNG grid to ``path`` (folders created)."""
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
        cv2.imwrite(path, cv2.cvtColor(make_grid(list(tiles), self.cols), cv2.COLOR_RGB2BGR))
        return path
