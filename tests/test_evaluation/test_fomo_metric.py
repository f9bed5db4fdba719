import numpy as np
import pytest
import torch

from sscma.evaluation.metrics import FomoMetric, f1_by_threshold, match_centroids, sample_matches


def _sample(pred_points, pred_labels, pred_scores, gt_boxes, gt_labels, scale=(1.0, 1.0)):
    return dict(pred_instances=dict(points=torch.tensor(pred_points, dtype=torch.float32).reshape(-1, 2),
                                    labels=torch.tensor(pred_labels, dtype=torch.long),
                                    scores=torch.tensor(pred_scores, dtype=torch.float32)),
                gt_instances=dict(bboxes=torch.tensor(gt_boxes, dtype=torch.float32).reshape(-1, 4),
                                  labels=torch.tensor(gt_labels, dtype=torch.long)),
                scale_factor=scale, fomo_stride=8)


def test_hand_made_counts():
    metric = FomoMetric(classes=['a', 'b'])
    metric.dataset_meta = dict(classes=['a', 'b'])
    samples = [
        # GT centres (10,10) class a and (50,50) class b.
        # pred 1: (12,14) class a -> TP; pred 2: (50,50) class a -> wrong class: FP, and b is FN;
        # pred 3: (13,11) class a -> duplicate of an already matched GT -> FP (lower score)
        _sample([[12, 14], [50, 50], [13, 11]], [0, 0, 0], [0.9, 0.8, 0.6],
                [[5, 5, 15, 15], [45, 45, 55, 55]], [0, 1]),
        # no GT, one prediction -> FP for b
        _sample([[30, 30]], [1], [0.7], [], []),
        # GT of class b, too far (> one cell) -> FN and FP
        _sample([[70, 70]], [1], [0.9], [[45, 45, 55, 55]], [1]),
    ]
    metric.process(None, samples)
    res = metric.compute_metrics(metric.results)
    assert (res['tp'], res['fp'], res['fn']) == (1, 4, 2)
    assert np.isclose(res['precision'], 1 / 5) and np.isclose(res['recall'], 1 / 3)
    assert np.isclose(res['f1'], 2 * (1 / 5) * (1 / 3) / (1 / 5 + 1 / 3))
    assert np.isclose(res['a_precision'], 1 / 3) and res['a_recall'] == 1.0
    assert res['b_precision'] == 0.0 and res['b_recall'] == 0.0


def test_tolerance_follows_scale_factor():
    # both in original pixels; the input is half the original size: one 8 px cell is 16 original px
    for scale, tp in (((0.5, 0.5), 1), ((1.0, 1.0), 0), ((1.0, 0.5), 0), ((0.5, 1.0), 1)):
        # GT centre (20, 20), prediction (30, 26): 10 px off in x, 6 in y
        sample = _sample([[30, 26]], [0], [0.9], [[18, 18, 22, 22]], [0], scale=scale)
        metric = FomoMetric(classes=['a'])
        metric.process(None, [sample])
        assert metric.compute_metrics(metric.results)['tp'] == tp, scale


def test_tolerance_is_one_cell_of_the_model_or_the_pixels_given():
    # GT centre (20, 20), prediction (32, 26) at a non-square input of (0.5, 0.75) the file: 6 x 4.5 input px off
    for stride, tolerance_px, tp in ((8, None, 1), (16, None, 1), (4, None, 0), (16, 5, 0), (4, 6, 1), (16, 8, 1)):
        sample = dict(_sample([[32, 26]], [0], [0.9], [[18, 18, 22, 22]], [0], scale=(0.5, 0.75)), fomo_stride=stride)
        metric = FomoMetric(classes=['a'], tolerance_px=tolerance_px)
        metric.process(None, [sample])
        assert metric.compute_metrics(metric.results)['tp'] == tp, (stride, tolerance_px)
        assert sample_matches(sample, tolerance_px)['tp'].tolist() == [bool(tp)]
    for bad in (0, -8, '8', True):  # True is an int to Python, not 1 px to a user
        with pytest.raises(ValueError, match='tolerance_px'):
            FomoMetric(tolerance_px=bad)


def test_match_is_one_to_one_and_score_ordered():
    matched = match_centroids(np.array([[0., 0.], [1., 1.]]), np.array([0, 0]), np.array([0.2, 0.9]),
                              np.array([[1., 1.]]), np.array([0]), (8, 8))
    assert matched.tolist() == [-1, 0]


def test_f1_by_threshold_is_the_metric_at_each_threshold():
    """On random predictions of 3 classes, non-square scale factors, one class not judged: the F1 of the
    predictions above each threshold, from one matching at the lowest, equals FomoMetric on those alone."""
    rng = np.random.default_rng(0)
    samples = []
    for i in range(12):
        scale = (rng.uniform(0.3, 1.5), rng.uniform(0.3, 1.5))
        gt = rng.uniform(0, 120, (rng.integers(0, 6), 2))
        boxes = np.concatenate([gt - 5, gt + 5], 1)
        pred = np.concatenate([gt + rng.normal(0, 8, gt.shape), rng.uniform(0, 120, (rng.integers(0, 5), 2))])
        samples.append(_sample(pred, rng.integers(0, 3, len(pred)), rng.uniform(0.3, 1.0, len(pred)), boxes,
                               rng.integers(0, 3, len(gt)), scale=scale))
    thresholds = [0.3, 0.5, 0.65, 0.8, 0.95]
    for unlabelled, judged in (((), None), (('c', ), [0, 1])):
        got = f1_by_threshold([sample_matches(s) for s in samples], thresholds, judged)
        for t, f1 in zip(thresholds, got):
            metric = FomoMetric()
            metric.dataset_meta = dict(classes=['a', 'b', 'c'], unlabelled_classes=unlabelled)
            for s in samples:
                keep = s['pred_instances']['scores'] > t
                metric.process(None, [dict(s, pred_instances={k: v[keep] for k, v in s['pred_instances'].items()})])
            assert f1 == pytest.approx(metric.compute_metrics(metric.results)['f1'], abs=1e-12), (t, unlabelled)
    assert len(set(np.round(got, 6))) > 2  # the thresholds do move the F1
