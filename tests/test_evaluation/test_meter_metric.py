"""Meter reading from keypoints and MeterMetric on hand-made predictions."""
import math

import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData
from mmpose.structures import PoseDataSample

from sscma.evaluation.metrics import MeterMetric, reading_from_keypoints, readings_from_keypoints


def meter(reading, start_deg=135.0, sweep_deg=270.0, clockwise=True, c=(50.0, 50.0), r=40.0):
    """Keypoints (centre, tip, start, end) of a dial; angles in image coordinates (y down: clockwise)."""
    s = 1 if clockwise else -1

    def at(deg, radius):
        a = math.radians(deg)
        return [c[0] + radius * math.cos(a), c[1] + radius * math.sin(a)]

    return np.array([list(c), at(start_deg + s * reading * sweep_deg, 30.0), at(start_deg, r),
                     at(start_deg + s * sweep_deg, r)])


@pytest.mark.parametrize('value', [0.0, 0.5, 1.0, 0.25, 0.9])
def test_reading_standard_gauge(value):
    # start bottom-left (135 deg), 270 deg clockwise through the top to bottom-right: wraps past +-180 deg
    assert reading_from_keypoints(meter(value)) == pytest.approx(value, abs=1e-9)


def test_reading_hand_made_points():
    c, start, end = [0, 0], [-1, 1], [1, 1]  # y down: start bottom-left, end bottom-right
    assert reading_from_keypoints([c, [-1, 1], start, end]) == pytest.approx(0.0)
    assert reading_from_keypoints([c, [0, -5], start, end]) == pytest.approx(0.5)  # straight up: half scale
    assert reading_from_keypoints([c, [1, 1], start, end]) == pytest.approx(1.0)
    assert reading_from_keypoints([c, [-1, 0], start, end]) == pytest.approx(45 / 270)  # pointing left


def test_reading_wrap_around_and_direction():
    # a 120 deg scale whose start is at 300 deg (top-right) and end at 60 deg (bottom-right), crossing 0 deg
    for v in (0.0, 0.3, 0.5, 1.0):
        assert reading_from_keypoints(meter(v, start_deg=300, sweep_deg=120)) == pytest.approx(v, abs=1e-9)
    # counter-clockwise scale
    k = meter(0.2, start_deg=45, sweep_deg=270, clockwise=False)
    assert reading_from_keypoints(k, clockwise=False) == pytest.approx(0.2, abs=1e-9)
    assert reading_from_keypoints(k) != pytest.approx(0.2, abs=1e-3)  # read the wrong way round


def test_reading_dead_zone_and_full_circle():
    below = meter(-0.05)  # needle just before the start, in the gap at the bottom
    above = meter(1.05)
    assert reading_from_keypoints(below) == 0.0 and reading_from_keypoints(above) == 1.0
    assert reading_from_keypoints(below, clip=False) == pytest.approx(-0.05, abs=1e-9)
    assert reading_from_keypoints(above, clip=False) == pytest.approx(1.05, abs=1e-9)
    full = meter(0.75, start_deg=-90, sweep_deg=360)  # start == end: a full-circle dial
    assert reading_from_keypoints(full) == pytest.approx(0.75, abs=1e-9)
    batch = readings_from_keypoints(np.stack([meter(0.1), meter(0.6)]))
    assert batch.shape == (2, ) and np.allclose(batch, [0.1, 0.6])


def _sample(gt, pred, scale=(1.0, 1.0), size=(100, 100), visible=None):
    s = PoseDataSample()
    gt_in = np.asarray(gt, np.float32) * np.asarray(scale, np.float32)  # network-input pixels
    vis = np.ones(len(gt)) if visible is None else np.asarray(visible)
    s.gt_instances = InstanceData(keypoints=torch.as_tensor(gt_in)[None],
                                  keypoints_visible=torch.as_tensor(vis, dtype=torch.float32)[None])
    s.pred_instances = InstanceData(keypoints=np.asarray(pred, np.float32)[None], keypoint_scores=np.ones((1, len(gt))))
    s.set_metainfo(dict(scale_factor=scale, ori_shape=size, img_shape=size))
    return s.to_dict()


def test_metric_perfect_and_known_errors():
    metric = MeterMetric()
    metric.dataset_meta = dict(keypoint_names=('center', 'needle_tip', 'scale_start', 'scale_end'))
    samples = []
    # 1: perfect, in a 2x downscaled input
    samples.append(_sample(meter(0.3), meter(0.3), scale=(0.5, 0.5)))
    # 2: the needle tip rotated to read 0.4 instead of 0.5 -> 10 % FS
    samples.append(_sample(meter(0.5), meter(0.4)))
    # 3: every keypoint 3 px right: reading changes, NME 3 % of 100 px
    samples.append(_sample(meter(0.8), meter(0.8) + [3.0, 0.0]))
    metric.process({}, samples)
    m = metric.compute_metrics(metric.results)
    assert m['reading_err_median'] == pytest.approx(abs(reading_from_keypoints(meter(0.8) + [3, 0]) - 0.8) * 100)
    errs = sorted([0.0, 10.0, m['reading_err_median']])
    assert m['reading_err_mean'] == pytest.approx(sum(errs) / 3, abs=1e-6)
    tip_shift = np.linalg.norm(meter(0.5)[1] - meter(0.4)[1])
    assert m['nme'] == pytest.approx((tip_shift + 4 * 3.0) / 12, abs=1e-4)  # 12 keypoints, 100 px images
    assert m['nme_needle_tip'] == pytest.approx((tip_shift + 3.0) / 3, abs=1e-4)
    assert tip_shift > 5 and m['pck@0.05'] == pytest.approx(100.0 * 11 / 12)  # only the rotated tip misses
    assert m['reading_within_2'] == pytest.approx(100.0 * sum(e <= 2 for e in errs) / 3)
    assert m['reading_within_5'] == pytest.approx(100.0 * sum(e <= 5 for e in errs) / 3)
    assert m['nme_dial'] == pytest.approx(m['nme'] * 100 / 80, rel=1e-3)  # scale diameter 80 px


def test_metric_ignores_invisible_and_names():
    metric = MeterMetric(reading_keypoints=('center', 'needle_tip', 'scale_start', 'scale_end'))
    metric.dataset_meta = dict(keypoint_names=('scale_end', 'center', 'needle_tip', 'scale_start'))
    k = meter(0.6)[[3, 0, 1, 2]]  # dataset order
    bad = k.copy()
    bad[0] += 50  # way off, but invisible
    metric.process({}, [_sample(k, k), _sample(k, bad, visible=[0, 1, 1, 1])])
    m = metric.compute_metrics(metric.results)
    assert m['nme'] == pytest.approx(0.0, abs=1e-5)
    assert m['reading_err_median'] == pytest.approx(0.0, abs=1e-4)  # the 2nd sample has no reading: only the 1st
    assert m['pck@0.05'] == pytest.approx(100.0)
