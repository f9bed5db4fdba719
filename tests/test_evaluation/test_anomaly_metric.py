"""AnomalyMetric: AUROC, AUPRO and F1 on hand-made scores, maps and masks of other sizes than the input."""
import cv2
import numpy as np
import pytest
import torch

from sscma.evaluation import AnomalyMetric, aupro, calibrate_threshold, image_auroc
from sscma.utils.errors import DatasetError


def test_image_auroc_hand_computed():
    # pairs (anomalous, normal): 0.35>0.1, 0.35<0.4, 0.8>both -> 3 of 4
    assert image_auroc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == 0.75
    assert image_auroc(np.array([0, 1]), np.array([0.5, 0.5])) == 0.5  # a tie counts half
    assert np.isnan(image_auroc(np.array([1, 1]), np.array([0.2, 0.3])))


def test_aupro_hand_computed():
    mask = np.zeros((10, 20), bool)
    mask[2:4, 2:4] = True  # region A (4 px)
    mask[6:9, 12:18] = True  # region B (18 px)
    assert aupro([mask], [mask.astype(float)]) == pytest.approx(1.0)
    # a constant map: every threshold flags all or nothing -> PRO = FPR -> area 0.3^2 / 2 / 0.3
    assert aupro([mask], [np.zeros(mask.shape)]) == pytest.approx(0.15)
    # only A found: (0, 0) -> (0, 0.5) -> (1, 1); PRO(0.3) = 0.65; area 0.3 * (0.5 + 0.65) / 2, / 0.3
    only_a = np.zeros(mask.shape)
    only_a[2:4, 2:4] = 1.0
    assert aupro([mask], [only_a]) == pytest.approx(0.575)
    # regions weigh the same whatever their size: only B found reads the same
    only_b = np.zeros(mask.shape)
    only_b[6:9, 12:18] = 1.0
    assert aupro([mask], [only_b]) == pytest.approx(0.575)
    assert np.isnan(aupro([np.zeros((4, 4), bool)], [np.zeros((4, 4))]))


def test_calibrated_threshold_best_f1_and_normal_quantile():
    # flag >= 0.5: tp 2, flagged 3 -> F1 0.8 (best); halfway to the next lower score 0.3
    thr, how = calibrate_threshold(np.array([0, 0, 0, 1, 1]), np.array([0.2, 0.3, 0.6, 0.5, 0.9]))
    assert thr == pytest.approx(0.4) and how == 'best F1'
    thr, how = calibrate_threshold(np.zeros(101), np.arange(101) / 100.0, target_fpr=0.05)
    assert thr == pytest.approx(0.95) and 'quantile' in how


def sample(label, score, amap, shape, mask_path=''):
    return dict(gt_label=torch.tensor([label]), anomaly_score=score, anomaly_map=torch.tensor(amap, dtype=torch.float32),
                ori_shape=shape, mask_path=mask_path)


def test_pixel_measures_at_the_original_size_non_square(tmp_path):
    # images 40 wide, 10 high (not the input size, not square); a 1x2 cell map [[0, 1]] resized bilinearly has
    # cell centres at x = 10 and 30: 0 up to x = 9.5, 1 from x = 29.5, rising in between
    right = np.zeros((10, 40), np.uint8)
    right[:, 20:] = 255
    left = 255 - right
    cv2.imwrite(str(tmp_path / 'right.png'), right)
    cv2.imwrite(str(tmp_path / 'left.png'), left)
    ramp = [[0.0, 1.0]]
    metric = AnomalyMetric()
    metric.process(None, [sample(1, 1.5, ramp, (10, 40), str(tmp_path / 'right.png')),
                          sample(0, 0.2, np.zeros((1, 2)), (10, 40))])
    res = metric.compute_metrics(metric.results)
    assert res['image_auroc'] == 1.0 and res['f1'] == 1.0  # 1.5 >= 1.0 flagged, 0.2 not
    # every right-half pixel scores above every other pixel (the ramp crosses 0.5 at x = 20)
    assert res['pixel_auroc'] == pytest.approx(1.0)
    metric = AnomalyMetric()
    metric.process(None, [sample(1, 0.9, ramp, (10, 40), str(tmp_path / 'left.png'))])
    res = metric.compute_metrics(metric.results)
    assert res['pixel_auroc'] == pytest.approx(0.0) and res['f1'] == 0.0 and res['recall'] == 0.0


def test_mask_of_another_size_is_an_error(tmp_path):
    cv2.imwrite(str(tmp_path / 'm.png'), np.zeros((12, 40), np.uint8))
    metric = AnomalyMetric()
    metric.process(None, [sample(1, 2.0, [[0.0, 1.0]], (10, 40), str(tmp_path / 'm.png')),
                          sample(0, 0.1, [[0.0, 0.0]], (10, 40))])
    with pytest.raises(DatasetError, match=r'm.png: mask is 40x12 but its image is 40x10'):
        metric.compute_metrics(metric.results)


def test_pixel_measures_left_out_when_some_masks_are_missing(tmp_path):
    cv2.imwrite(str(tmp_path / 'm.png'), np.full((10, 40), 255, np.uint8))
    metric = AnomalyMetric()
    metric.process(None, [sample(1, 2.0, [[1.0, 1.0]], (10, 40), str(tmp_path / 'm.png')),
                          sample(1, 2.0, [[1.0, 1.0]], (10, 40)), sample(0, 0.1, [[0.0, 0.0]], (10, 40))])
    res = metric.compute_metrics(metric.results)
    assert 'pixel_auroc' not in res and 'aupro' not in res and res['image_auroc'] == 1.0
