"""Validation images with ground truth and predictions drawn, saved as one PNG grid per validation."""
import os
import os.path as osp
from typing import List, Optional, Sequence

import cv2
import numpy as np
from mmengine.dist import master_only
from mmengine.hooks import Hook

from sscma.registry import HOOKS

PALETTE = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
           (240, 50, 230), (210, 245, 60), (250, 190, 190), (0, 128, 128)]


def draw_detections(img: np.ndarray, gt_boxes: np.ndarray, gt_labels: np.ndarray, points: np.ndarray,
                    labels: np.ndarray, scores: np.ndarray, classes: Sequence[str], size: int = 192) -> np.ndarray:
    """Draw ground-truth boxes (thin) and predicted centroids (filled dots + score) on an RGB copy."""
    h, w = img.shape[:2]
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    scale = size / max(h, w)
    canvas = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_LINEAR)
    for box, label in zip(gt_boxes.reshape(-1, 4) * scale, gt_labels):
        x0, y0, x1, y1 = box.round().astype(int)
        cv2.rectangle(canvas, (x0, y0), (x1, y1), PALETTE[int(label) % len(PALETTE)], 1)
    for (x, y), label, score in zip(points.reshape(-1, 2) * scale, labels, scores):
        color = PALETTE[int(label) % len(PALETTE)]
        cv2.circle(canvas, (int(x), int(y)), 4, color, -1)
        cv2.circle(canvas, (int(x), int(y)), 4, (255, 255, 255), 1)
        name = classes[int(label)] if int(label) < len(classes) else str(int(label))
        cv2.putText(canvas, f'{name} {score:.2f}', (int(x) + 5, int(y) - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
                    color, 1, cv2.LINE_AA)
    return canvas


def make_grid(tiles: List[np.ndarray], cols: int = 4) -> np.ndarray:
    th = max(t.shape[0] for t in tiles)
    tw = max(t.shape[1] for t in tiles)
    rows = (len(tiles) + cols - 1) // cols
    grid = np.full((rows * (th + 4), cols * (tw + 4), 3), 255, np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        grid[r * (th + 4):r * (th + 4) + t.shape[0], c * (tw + 4):c * (tw + 4) + t.shape[1]] = t
    return grid


@HOOKS.register_module()
class PredictionVisHook(Hook):
    """Save the first ``max_images`` validation images with boxes and predicted centroids to
    ``<work_dir>/vis/val_epoch_<N>.png`` (and ``test.png`` when testing).

    Predictions are read from ``pred_instances.points`` (FOMO) or the centres of ``pred_instances.bboxes``;
    both they and the ground-truth boxes are in original-image pixels, drawn on the image file itself.

    Args:
        max_images (int): Images per grid. Defaults to 16.
        score_thr (float): Hide predictions below this score. Defaults to 0.
    """
    priority = 'LOW'

    def __init__(self, max_images: int = 16, score_thr: float = 0.0) -> None:
        self.max_images = max_images
        self.score_thr = score_thr
        self._tiles: List[np.ndarray] = []

    def before_val_epoch(self, runner) -> None:
        self._tiles = []

    before_test_epoch = before_val_epoch

    @master_only
    def after_val_iter(self, runner, batch_idx: int, data_batch=None, outputs: Optional[Sequence] = None) -> None:
        if len(self._tiles) >= self.max_images or not outputs:
            return
        classes = list(getattr(runner.val_dataloader.dataset, 'metainfo', {}).get('classes', []))
        for sample in outputs[:self.max_images - len(self._tiles)]:
            img = cv2.imread(sample.img_path, cv2.IMREAD_COLOR)
            if img is None:
                continue
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
            gt = sample.gt_instances  # original-image pixels, as the predictions (see FomoMetric)
            gt_boxes = (gt.bboxes.tensor if hasattr(gt.bboxes, 'tensor') else gt.bboxes).cpu().numpy()
            pred = sample.pred_instances
            keep = (pred.scores >= self.score_thr).cpu().numpy()
            if 'points' in pred:
                points = pred.points.cpu().numpy()
            else:
                b = (pred.bboxes.tensor if hasattr(pred.bboxes, 'tensor') else pred.bboxes).cpu().numpy()
                points = np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], 1)
            self._tiles.append(draw_detections(img, gt_boxes, gt.labels.cpu().numpy(), points[keep],
                                               pred.labels.cpu().numpy()[keep], pred.scores.cpu().numpy()[keep],
                                               classes))

    after_test_iter = after_val_iter

    def _save(self, runner, name: str) -> None:
        if not self._tiles:
            return
        folder = osp.join(runner.work_dir, 'vis')
        os.makedirs(folder, exist_ok=True)
        path = osp.join(folder, name)
        cv2.imwrite(path, cv2.cvtColor(make_grid(self._tiles), cv2.COLOR_RGB2BGR))
        self._tiles = []

    @master_only
    def after_val_epoch(self, runner, metrics=None) -> None:
        self._save(runner, f'val_epoch_{runner.epoch:03d}.png')

    @master_only
    def after_test_epoch(self, runner, metrics=None) -> None:
        self._save(runner, 'test.png')
