"""Validation images with ground-truth and predicted keypoints (and meter readings) drawn, one PNG per epoch."""
from typing import Optional

import numpy as np

from sscma.registry import HOOKS

from .prediction_vis_hook import PredictionVisHook


@HOOKS.register_module()
class KeypointVisHook(PredictionVisHook):
    """Save the first ``max_images`` validation images with true (white rings) and predicted keypoints
    (coloured dots) to ``<work_dir>/vis/val_epoch_<N>.png`` (``test.png`` when testing).

    With ``show_reading``, when the dataset's ``keypoint_names`` include ``center``, ``needle_tip``,
    ``scale_start`` and ``scale_end``, each tile is captioned with the predicted and true meter readings in %
    of full scale (drawn by :class:`~sscma.visualization.SampleGridVisualizer`).

    Args:
        max_images (int): Images per grid. Defaults to 16.
        show_reading (bool): Caption tiles with meter readings. Defaults to True.
        visualizer (dict): The visualizer to draw with. Defaults to ``SampleGridVisualizer``.
    """

    def __init__(self, max_images: int = 16, show_reading: bool = True, visualizer: Optional[dict] = None) -> None:
        cfg = dict(visualizer or dict(type='SampleGridVisualizer'))
        cfg.setdefault('show_reading', show_reading)
        super().__init__(max_images=max_images, visualizer=cfg)

    def _start(self, runner, phase: str) -> None:
        self._tiles = []
        loader = getattr(runner, f'{phase}_dataloader', None)
        self.visualizer.dataset_meta = getattr(getattr(loader, 'dataset', None), 'metainfo', None)

    def before_val_epoch(self, runner) -> None:
        self._start(runner, 'val')

    def before_test_epoch(self, runner) -> None:
        self._start(runner, 'test')

    def _update_meta(self, runner) -> None:
        """Set per phase, from its own dataloader (before_val_epoch / before_test_epoch)."""

    def _draw(self, image: np.ndarray, sample) -> Optional[np.ndarray]:
        return self.visualizer.draw_keypoint_sample(image, sample)
