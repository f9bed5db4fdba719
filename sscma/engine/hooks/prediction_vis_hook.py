"""Validation images with ground truth and predictions drawn, saved as one PNG grid per validation."""
import os.path as osp
from typing import List, Optional, Sequence

import cv2
import numpy as np
from mmengine.dist import master_only
from mmengine.hooks import Hook

from sscma.registry import HOOKS, VISUALIZERS


@HOOKS.register_module()
class PredictionVisHook(Hook):
    """Save ``max_images`` validation images (the first, or every ``every``-th) with ground truth and predictions drawn to
    ``<work_dir>/vis/val_epoch_<N>.png`` (and ``test.png`` when testing), for every task.

    The tiles are drawn on the image files themselves by the model's task (:meth:`sscma.tasks.Task.draw`:
    boxes and centroids, a class caption, keypoints and the meter reading ...) through the visualizer
    (:class:`~sscma.visualization.SampleGridVisualizer`, built from ``VISUALIZERS``), with the class names of
    the dataset of the phase (validation or test).

    Args:
        max_images (int): Images per grid. Defaults to 16.
        every (int): Draw every ``every``-th image, so that a grid spans a dataset sorted by kind (an anomaly
            set's normal images come first). Defaults to 1.
        score_thr (float): Hide predictions below this score. Defaults to 0.
        visualizer (dict): The visualizer to draw with. Defaults to ``SampleGridVisualizer``.
    """
    priority = 'LOW'

    def __init__(self, max_images: int = 16, score_thr: float = 0.0, every: int = 1,
                 visualizer: Optional[dict] = None) -> None:
        self.max_images = max_images
        self.every = max(1, int(every))
        self._seen = 0
        cfg = dict(visualizer or dict(type='SampleGridVisualizer'))
        cfg.setdefault('score_thr', score_thr)
        self.visualizer = build_visualizer(cfg, f'{type(self).__name__}_{id(self)}')
        self._tiles: List[np.ndarray] = []

    def _start(self, runner, phase: str) -> None:
        from mmengine.model import is_model_wrapper

        from sscma.tasks import task_of
        self._tiles = []
        self._seen = 0
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        self.visualizer.task = task_of(getattr(model, 'model', model))  # BackendModel: its float model's task
        loader = getattr(runner, f'{phase}_dataloader', None)
        self.visualizer.dataset_meta = getattr(getattr(loader, 'dataset', None), 'metainfo', None)

    def before_val_epoch(self, runner) -> None:
        self._start(runner, 'val')

    def before_test_epoch(self, runner) -> None:
        self._start(runner, 'test')

    @master_only
    def after_val_iter(self, runner, batch_idx: int, data_batch=None, outputs: Optional[Sequence] = None) -> None:
        if len(self._tiles) >= self.max_images or not outputs:
            return
        for sample in outputs:
            self._seen += 1
            if (self._seen - 1) % self.every or len(self._tiles) >= self.max_images:
                continue
            img = cv2.imread(sample.img_path, cv2.IMREAD_COLOR)
            if img is None:
                continue
            tile = self.visualizer.draw_sample(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), sample)
            if tile is not None:
                self._tiles.append(tile)

    after_test_iter = after_val_iter

    def _save(self, runner, name: str) -> None:
        if not self._tiles:
            return
        self.visualizer.save_grid(self._tiles, osp.join(runner.work_dir, 'vis', name))
        self._tiles = []

    @master_only
    def after_val_epoch(self, runner, metrics=None) -> None:
        self._save(runner, f'val_epoch_{runner.epoch:03d}.png')

    @master_only
    def after_test_epoch(self, runner, metrics=None) -> None:
        self._save(runner, 'test.png')


def build_visualizer(cfg: dict, name: str):
    """The registered visualizer class called directly: an instance of the hook's own, not mmengine's
    process-wide current visualizer (which the runner's logging uses)."""
    cfg = dict(cfg)
    cls = VISUALIZERS.get(cfg.pop('type'))
    cfg.setdefault('name', name)
    return cls(**cfg)
