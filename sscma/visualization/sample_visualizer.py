"""Data samples drawn as tiles (ground truth + predictions, as their task draws them) and gathered into PNG grids."""
import os
import os.path as osp
from typing import Optional, Sequence

import cv2
import numpy as np
from mmengine.visualization import Visualizer

from sscma.registry import VISUALIZERS

from .drawing import make_grid


@VISUALIZERS.register_module()
class SampleGridVisualizer(Visualizer):
    """Draw data samples (ground truth and predictions) on their images, OpenCV-fast, at a fixed tile size, and
    gather tiles into PNG grids.

    What a sample looks like drawn is its task's (:meth:`sscma.tasks.Task.draw`: centroids, boxes, a class
    caption, keypoints with the meter reading ...): set :attr:`task` (``task_of(model)``) and ``dataset_meta``
    (class and keypoint names) before drawing.

    Args:
        name (str): Instance name (mmengine ``ManagerMixin``). Defaults to ``'sample_grid_visualizer'``.
        score_thr (float): Hide predictions scoring below this. Defaults to 0.
        size (int): Longer side of a tile in pixels. Defaults to 192.
        cols (int): Tiles per row of a grid. Defaults to 4.
        **kwargs: The rest of mmengine ``Visualizer``'s arguments (``vis_backends``, ``save_dir`` ...).
    """

    def __init__(self, name: str = 'sample_grid_visualizer', score_thr: float = 0.0, size: int = 192, cols: int = 4,
                 **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.score_thr = score_thr
        self.size = size
        self.cols = cols
        self.task = None

    def _draw(self, image: np.ndarray, sample, size: int, truth: bool) -> Optional[np.ndarray]:
        if self.task is None:
            raise ValueError(f'{type(self).__name__}.task is not set: set it to sscma.tasks.task_of(model)')
        return self.task.draw(image, sample, self.dataset_meta or {}, size, self.score_thr, truth)

    def draw_sample(self, image: np.ndarray, sample) -> Optional[np.ndarray]:
        """A tile (``size`` pixels on the longer side) with the sample's ground truth and predictions."""
        return self._draw(image, sample, self.size, truth=True)

    def draw_prediction(self, image: np.ndarray, sample) -> Optional[np.ndarray]:
        """The sample's predictions alone, at the image's own size (``tools/inference.py``'s annotated images and
        video frames)."""
        return self._draw(image, sample, max(image.shape[:2]), truth=False)

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
