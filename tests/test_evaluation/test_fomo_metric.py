import numpy as np
import torch

from sscma.evaluation import FomoMetric, match_centroids


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


def test_match_is_one_to_one_and_score_ordered():
    matched = match_centroids(np.array([[0., 0.], [1., 1.]]), np.array([0, 0]), np.array([0.2, 0.9]),
                              np.array([[1., 1.]]), np.array([0]), (8, 8))
    assert matched.tolist() == [-1, 0]
