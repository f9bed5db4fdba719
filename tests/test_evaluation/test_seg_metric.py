"""SegMetric: exact IoU on hand-made masks at the original size (not the input's, not square), ignore pixels left
out, classes absent from both sides left out of the mean."""
import cv2
import numpy as np
import pytest
import torch
from mmengine.structures import BaseDataElement

from sscma.evaluation import SegMetric, confusion, iou_from_confusion


def sample(tmp_path, name, true, pred):
    path = str(tmp_path / f'{name}.png')
    cv2.imwrite(path, true.astype(np.uint8))
    s = BaseDataElement(metainfo=dict(seg_source=dict(png=path, hw=true.shape, num_classes=3, classes_file='c'),
                                      seg_lut=None, ori_shape=true.shape))
    s.pred_sem_seg = torch.from_numpy(pred)
    return s


def test_iou_hand_computed_non_square(tmp_path):
    true = np.zeros((20, 30), np.uint8)  # 20 high, 30 wide
    true[:, 10:20] = 1  # 200 px of class 1
    true[0, :] = 255  # ignored row
    pred = np.zeros((20, 30), np.int64)
    pred[:, 15:25] = 1  # 100 px overlap on non-ignored rows: 19 rows x 5 = 95; pred 19 x 10 = 190
    pred[0, :] = 2  # ignored: does not count, so class 2 never appears
    metric = SegMetric()
    metric.dataset_meta = dict(classes=('background', 'thing', 'other'))
    metric.process(None, [sample(tmp_path, 'a', true, pred)])
    res = metric.compute_metrics(metric.results)
    # class 1: inter 95, union 190 + 190 - 95 = 285; background: true 19*20 = 380, pred 380, inter 380 - 95 = 285
    assert res['IoU.thing'] == pytest.approx(95 / 285)
    assert res['IoU.background'] == pytest.approx(285 / (380 + 380 - 285))
    assert np.isnan(res['IoU.other'])
    assert res['mIoU'] == pytest.approx((95 / 285 + 285 / 475) / 2)
    assert res['aAcc'] == pytest.approx((95 + 285) / 570)
    assert res['confusion_matrix'].tolist() == [[285, 95, 0], [95, 95, 0], [0, 0, 0]]


def test_totals_over_the_split_not_means_of_images(tmp_path):
    a_true = np.ones((4, 6), np.uint8)
    a_pred = np.ones((4, 6), np.int64)  # IoU 1 on 24 px
    b_true = np.ones((10, 3), np.uint8)
    b_pred = np.zeros((10, 3), np.int64)  # IoU 0 on 30 px
    metric = SegMetric()
    metric.dataset_meta = dict(classes=('background', 'thing', 'other'))
    metric.process(None, [sample(tmp_path, 'a', a_true, a_pred), sample(tmp_path, 'b', b_true, b_pred)])
    res = metric.compute_metrics(metric.results)
    assert res['IoU.thing'] == pytest.approx(24 / 54)  # not (1 + 0) / 2


def test_confusion_and_iou_helpers():
    m = confusion(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 255]), 3)
    assert m.tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 0]]
    iou = iou_from_confusion(m)
    assert iou[0] == 1.0 and iou[1] == 0.5 and iou[2] == 0.0
