from .drawing import (PALETTE, draw_anomaly_map, draw_caption, draw_detections, draw_keypoints, draw_poses,
                      draw_segmentation, make_grid)
from .plots import plot_confusion_matrix, plot_training_curves, read_scalars
from .sample_visualizer import SampleGridVisualizer
from .tensorboard_backend import TensorboardVisBackend, tensorboard_without_tensorflow

__all__ = ['PALETTE', 'draw_anomaly_map', 'draw_caption', 'draw_segmentation', 'draw_detections', 'draw_keypoints',
           'draw_poses', 'make_grid', 'plot_confusion_matrix',
           'plot_training_curves', 'read_scalars', 'SampleGridVisualizer',
           'TensorboardVisBackend', 'tensorboard_without_tensorflow']
