"""Validation images with ground-truth and predicted keypoints (and meter readings) drawn, one PNG per epoch."""
from typing import Optional, Sequence

import cv2
import numpy as np
from mmengine.dist import master_only

from sscma.registry import HOOKS

from .prediction_vis_hook import PALETTE, PredictionVisHook


def draw_keypoints(img: np.ndarray, gt: np.ndarray, pred: np.ndarray, gt_visible: Optional[np.ndarray] = None,
                   text: str = '', size: int = 192, link: Sequence[int] = (0, 1)) -> np.ndarray:
    """Draw ground-truth keypoints (white rings) and predictions (filled dots, one colour per keypoint).

    ``gt`` / ``pred`` are ``(K, 2)`` original-image pixels (corner convention). ``link`` joins two
    keypoints with a line (the meter's centre and needle tip by default); ``text`` goes in the top-left.
    """
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    h, w = img.shape[:2]
    scale = size / max(h, w)
    canvas = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_LINEAR)
    vis = np.ones(len(gt), bool) if gt_visible is None else np.asarray(gt_visible).reshape(-1) > 0

    def px(p):
        return int(round((p[0] * scale - 0.5) * 16)), int(round((p[1] * scale - 0.5) * 16))

    a, b = tuple(link) if len(link) == 2 else (None, None)
    if a is not None and max(a, b) < len(gt) and vis[a] and vis[b]:
        cv2.line(canvas, px(gt[a]), px(gt[b]), (255, 255, 255), 1, cv2.LINE_AA, 4)
    if a is not None and max(a, b) < len(pred):
        cv2.line(canvas, px(pred[a]), px(pred[b]), (255, 255, 0), 1, cv2.LINE_AA, 4)
    for k, (g, v) in enumerate(zip(gt, vis)):
        if v:
            cv2.circle(canvas, px(g), 5 * 16, (255, 255, 255), 1, cv2.LINE_AA, 4)
    for k, p in enumerate(pred):
        color = PALETTE[k % len(PALETTE)]
        cv2.circle(canvas, px(p), 3 * 16, color, -1, cv2.LINE_AA, 4)
    if text:
        cv2.putText(canvas, text, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(canvas, text, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 255), 1, cv2.LINE_AA)
    return canvas


@HOOKS.register_module()
class KeypointVisHook(PredictionVisHook):
    """Save the first ``max_images`` validation images with true (white rings) and predicted keypoints
    (coloured dots) to ``<work_dir>/vis/val_epoch_<N>.png`` (``test.png`` when testing).

    With ``show_reading``, when the dataset's ``keypoint_names`` include ``center``, ``needle_tip``,
    ``scale_start`` and ``scale_end``, each tile is captioned with the predicted and true meter readings in %
    of full scale.

    Args:
        max_images (int): Images per grid. Defaults to 16.
        show_reading (bool): Caption tiles with meter readings. Defaults to True.
    """

    def __init__(self, max_images: int = 16, show_reading: bool = True) -> None:
        super().__init__(max_images=max_images)
        self.show_reading = show_reading
        self._reading_idx: Optional[list] = None

    def _start(self, runner, phase: str) -> None:
        self._tiles = []
        loader = getattr(runner, f'{phase}_dataloader', None)
        names = list((getattr(getattr(loader, 'dataset', None), 'metainfo', None) or {}).get('keypoint_names') or [])
        from sscma.datasets.meter_builtin import METER_KEYPOINTS
        wanted = list(METER_KEYPOINTS)
        self._reading_idx = [names.index(n) for n in wanted] if set(wanted) <= set(names) else None

    def before_val_epoch(self, runner) -> None:
        self._start(runner, 'val')

    def before_test_epoch(self, runner) -> None:
        self._start(runner, 'test')

    @master_only
    def after_val_iter(self, runner, batch_idx: int, data_batch=None, outputs: Optional[Sequence] = None) -> None:
        if len(self._tiles) >= self.max_images or not outputs:
            return
        from sscma.evaluation.metrics.meter_metric import reading_from_keypoints
        for sample in outputs[:self.max_images - len(self._tiles)]:
            if 'pred_instances' not in sample or 'keypoints' not in sample.pred_instances:
                continue
            img = cv2.imread(sample.img_path, cv2.IMREAD_COLOR)
            if img is None:
                continue
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
            pred = np.asarray(sample.pred_instances.keypoints, dtype=np.float64).reshape(-1, 2)
            scale = np.asarray(sample.metainfo.get('scale_factor', (1.0, 1.0))[:2], dtype=np.float64)
            gt_inst = sample.get('gt_instances')
            if gt_inst is not None and 'keypoints' in gt_inst:
                k = gt_inst.keypoints
                gt = np.asarray(k.cpu() if hasattr(k, 'cpu') else k, dtype=np.float64).reshape(-1, 2) / scale
                v = gt_inst.get('keypoints_visible')
                vis = None if v is None else np.asarray(v.cpu() if hasattr(v, 'cpu') else v).reshape(-1)
            else:
                gt, vis = np.zeros((0, 2)), None
            text = ''
            idx = self._reading_idx
            link = (idx[0], idx[1]) if idx else ()
            if self.show_reading and idx and max(idx) < len(pred):
                text = f'{reading_from_keypoints(pred[idx]) * 100:.0f}%'
                if max(idx) < len(gt) and (vis is None or (vis[idx] > 0).all()):
                    text += f' (gt {reading_from_keypoints(gt[idx]) * 100:.0f}%)'
            self._tiles.append(draw_keypoints(img, gt, pred, vis, text, link=link))

    after_test_iter = after_val_iter
