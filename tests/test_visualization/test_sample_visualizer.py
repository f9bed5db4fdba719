"""SampleGridVisualizer: registered, draws a sample as its task does, ground truth where it is in the image,
keypoints divided back."""
import numpy as np
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData
from mmpose.structures import PoseDataSample

from sscma.registry import VISUALIZERS
from sscma.tasks import FomoTask, KeypointTask
from sscma.utils import register_all_modules
from sscma.visualization import PALETTE, SampleGridVisualizer


def visualizer(task, **kwargs):
    register_all_modules()
    cls = VISUALIZERS.get('SampleGridVisualizer')
    assert cls is SampleGridVisualizer
    vis = cls(name=f'test_{len(kwargs)}_{id(kwargs)}', **kwargs)
    vis.task = task
    return vis


def test_detection_tile_draws_boxes_in_original_pixels():
    vis = visualizer(FomoTask(), score_thr=0.5)
    vis.dataset_meta = dict(classes=['coin', 'face'])
    img = np.zeros((240, 320, 3), np.uint8)  # not the network size; drawn at 192 px on the long side
    s = DetDataSample(metainfo=dict(scale_factor=(0.3, 0.4)))
    s.gt_instances = InstanceData(bboxes=torch.tensor([[100., 50, 300, 200]]), labels=torch.tensor([1]))
    s.pred_instances = InstanceData(points=torch.tensor([[200., 120]]), scores=torch.tensor([0.2]),
                                    labels=torch.tensor([1]))
    tile = vis.draw_sample(img, s)
    assert tile.shape == (144, 192, 3)
    top = tile[30, 62:178]  # the box's top edge at 0.6 scale, in the class colour
    assert (np.abs(top.astype(int) - PALETTE[1]).sum(1) < 10).mean() > 0.9
    assert not tile[60:84, 108:132].any()  # the prediction is below score_thr: not drawn


def test_keypoint_tile_divides_ground_truth_by_scale_factor(tmp_path):
    vis = visualizer(KeypointTask())
    img = np.zeros((100, 200, 3), np.uint8)
    s = PoseDataSample(metainfo=dict(scale_factor=(0.5, 0.5)))
    s.gt_instances = InstanceData(keypoints=np.array([[[50., 25]]]), keypoints_visible=np.ones((1, 1)))  # network px
    s.pred_instances = InstanceData(keypoints=np.array([[[20., 20]]]))  # original pixels
    tile = vis.draw_sample(img, s)
    assert tile.shape == (96, 192, 3)
    ring = tile[int(50 * 0.96) - 5, int(100 * 0.96)]  # the white ring 5 px above the true point (100, 50)
    assert ring.min() > 100
    assert vis.save_grid([tile, tile], str(tmp_path / 'vis' / 'grid.png')).endswith('grid.png')
    assert (tmp_path / 'vis' / 'grid.png').stat().st_size > 100
