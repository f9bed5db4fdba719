"""Mosaic and mixup on a batch: exact pixels and ground truth on non-square images, and their switch-off."""
import logging
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import BaseDataElement, InstanceData

from sscma.engine.hooks import BatchAugmentSwitchHook
from sscma.models.data_preprocessors import BatchMixUp, BatchMosaic, DetDataPreprocessor
from sscma.registry import MODELS
from sscma.utils.errors import ConfigError

H, W = 48, 80  # non-square


def coded_images(n):
    """Image i: channel 0 = 10 * i, channel 1 = row, channel 2 = column: every pixel says where it came from."""
    rows, cols = np.mgrid[0:H, 0:W]
    return torch.stack([torch.from_numpy(np.stack([np.full((H, W), 10.0 * i), rows, cols])).float() for i in range(n)])


def sample(boxes, labels, keypoints=None):
    s = DetDataSample(metainfo=dict(img_shape=(H, W)))
    fields = dict(bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), labels=torch.tensor(labels))
    if keypoints is not None:
        fields['keypoints'] = torch.tensor(keypoints, dtype=torch.float32).reshape(len(labels), 1, 2)
    s.gt_instances = InstanceData(**fields)
    return s


def four_samples():
    return [sample([[2, 2, 12, 10], [60, 30, 78, 46]], [0, 1], [[[7, 6]], [[69, 38]]]),
            sample([[0, 0, 20, 20], [70, 4, 80, 14]], [2, 3], [[[10, 10]], [[75, 9]]]),
            sample([], [], np.zeros((0, 1, 2))),
            sample([[30, 0, 50, 10]], [4], [[[40, 5]]])]


def expected_boxes(samples, sources, corner, min_visibility=0.3):
    """The mosaic's boxes written out: each source's boxes shifted by its quadrant minus the window corner,
    clipped to the window, kept where at least ``min_visibility`` of the area stays."""
    boxes, labels = [], []
    for q, s in enumerate(sources):
        dx, dy = (W if q in (1, 3) else 0) - corner[0], (H if q in (2, 3) else 0) - corner[1]
        instances = samples[s].gt_instances
        for (x1, y1, x2, y2), label in zip(instances.bboxes.tolist(), instances.labels.tolist()):
            moved = np.array([x1 + dx, y1 + dy, x2 + dx, y2 + dy])
            clipped = np.clip(moved, 0, [W, H, W, H])
            area = (x2 - x1) * (y2 - y1)
            if (clipped[2] - clipped[0]) * (clipped[3] - clipped[1]) >= min_visibility * area:
                boxes.append(clipped)
                labels.append(label)
    return np.array(boxes).reshape(-1, 4), labels


@pytest.mark.parametrize('corner', [(0, 0), (W, H), (37, 21), (5, 40)])
def test_mosaic_is_a_window_of_four_images_side_by_side(corner):
    images, samples = coded_images(4), four_samples()
    originals = [s.clone() for s in samples]
    out, outs = BatchMosaic(p=1).place(images.clone(), samples, np.array([0]), np.array([[1, 2, 3]]),
                                       np.array([corner]))
    canvas = torch.cat([torch.cat([images[0], images[1]], -1), torch.cat([images[2], images[3]], -1)], -2)
    x0, y0 = corner
    assert torch.equal(out[0], canvas[:, y0:y0 + H, x0:x0 + W])  # whole pixels: no resampling
    assert torch.equal(out[1:], images[1:])  # the partners themselves are untouched
    boxes, labels = expected_boxes(originals, [0, 1, 2, 3], corner)
    np.testing.assert_allclose(outs[0].gt_instances.bboxes.numpy(), boxes)
    assert outs[0].gt_instances.labels.tolist() == labels
    # keypoints move with their boxes and leave with them
    kept = [k for k, label in enumerate([0, 1, 2, 3, 4]) if label in labels]
    points = np.concatenate([s.gt_instances.keypoints.numpy() for s in originals])[kept]
    quadrant_of = [0, 0, 1, 1, 3]
    shift = np.array([[(W if q in (1, 3) else 0) - x0, (H if q in (2, 3) else 0) - y0] for q in quadrant_of])[kept]
    np.testing.assert_allclose(outs[0].gt_instances.keypoints.numpy(), points + shift[:, None])
    for s, o in zip(outs[1:], originals[1:]):  # the partners keep their own objects
        assert torch.equal(s.gt_instances.bboxes, o.gt_instances.bboxes)


def test_every_mosaic_box_holds_its_own_object():
    """Random mosaics of label-coloured rectangles: inside each box, the pixels are that label's colour."""
    torch.manual_seed(0)
    n, rng = 8, np.random.default_rng(0)
    images, samples = torch.zeros(n, 3, H, W), []
    for i in range(n):
        boxes, labels = [], []
        for j in range(int(rng.integers(0, 3))):
            x1 = int(rng.integers(0, W - 12)) if j == 0 else int(rng.integers(W // 2, W - 12))
            y1 = int(rng.integers(0, H - 12))
            x1 = min(x1, W // 2 - 13) if j == 0 else x1  # two objects per image never overlap
            label = int(rng.integers(0, 3))
            images[i, label, y1:y1 + 12, x1:x1 + 12] = 255
            boxes.append([x1, y1, x1 + 12, y1 + 12])
            labels.append(label)
        samples.append(sample(boxes, labels))
    out, outs = BatchMosaic(p=1)(images, samples)
    found = 0
    for img, s in zip(out, outs):
        for (x1, y1, x2, y2), label in zip(s.gt_instances.bboxes.long().tolist(), s.gt_instances.labels.tolist()):
            found += 1
            assert (img[label, y1:y2, x1:x2] == 255).all()
    assert found > 0


def test_mixup_blends_two_images_and_keeps_both_objects():
    images, samples = coded_images(3), four_samples()[:3]
    originals = [s.clone() for s in samples]
    ratio = torch.tensor([0.25, 0.6])
    out, outs = BatchMixUp(p=1).blend(images.clone(), samples, np.array([0, 1]), np.array([1, 0]), ratio)
    torch.testing.assert_close(out[0], 0.25 * images[0] + 0.75 * images[1])
    torch.testing.assert_close(out[1], 0.6 * images[1] + 0.4 * images[0])  # its partner's pixels as they were
    assert torch.equal(out[2], images[2])
    for i, j in ((0, 1), (1, 0)):
        assert torch.equal(outs[i].gt_instances.bboxes, torch.cat([originals[i].gt_instances.bboxes,
                                                                  originals[j].gt_instances.bboxes]))
        assert outs[i].gt_instances.labels.tolist() == (originals[i].gt_instances.labels.tolist()
                                                        + originals[j].gt_instances.labels.tolist())


def test_mixup_refuses_label_maps():
    s = BaseDataElement(gt_sem_seg=torch.zeros(H, W, dtype=torch.long))  # as the segmentation pipeline packs
    with pytest.raises(ConfigError, match='label map'):
        BatchMixUp(p=1)(torch.zeros(2, 3, H, W), [s, s.clone()])


def test_mosaic_moves_label_maps_like_the_image():
    images = coded_images(4)
    samples = []
    for i in range(4):
        samples.append(BaseDataElement(gt_sem_seg=images[i, 2].long() % 7 + 10 * i))  # as distinct as the image
    out, outs = BatchMosaic(p=1).place(images.clone(), samples, np.array([2]), np.array([[0, 3, 1]]),
                                       np.array([[11, 30]]))
    canvas = torch.cat([torch.cat([images[2, 2] % 7 + 20, images[0, 2] % 7], -1),
                        torch.cat([images[3, 2] % 7 + 30, images[1, 2] % 7 + 10], -1)], -2)
    assert torch.equal(outs[2].gt_sem_seg, canvas[30:30 + H, 11:11 + W].long())


def test_in_the_preprocessor_and_arguments_named():
    pre = DetDataPreprocessor(mean=[0.0] * 3, std=[1.0] * 3, augments=[dict(type='BatchMosaic'),
                                                                      dict(type='BatchMixUp', p=1.0)])
    batch = dict(inputs=[x.to(torch.uint8) for x in coded_images(4)], data_samples=four_samples())
    out = pre(batch, training=True)
    assert out['inputs'].shape == (4, 3, H, W)
    for bad, word in ((dict(type='BatchMosaic', p=2), 'p=2'), (dict(type='BatchMixUp', alpha=0), 'alpha=0')):
        with pytest.raises(ConfigError, match=word):
            MODELS.build(bad)


def fake_runner(epoch, max_epochs, steps):
    model = SimpleNamespace(data_preprocessor=SimpleNamespace(augments=steps))
    return SimpleNamespace(model=model, epoch=epoch, max_epochs=max_epochs, logger=logging.getLogger('switch'))


def test_switch_hook_closes_mosaic_and_mixup_for_the_last_epochs():
    mosaic, mixup, flip = BatchMosaic(p=0.8), BatchMixUp(p=0.3), MODELS.build(dict(type='BatchHorizontalFlip'))
    hook = BatchAugmentSwitchHook(close_epochs=2)
    runner = fake_runner(0, 6, [mosaic, mixup, flip])
    hook.before_train(runner)
    seen = []
    for epoch in range(6):
        runner.epoch = epoch
        hook.before_train_epoch(runner)
        seen.append((mosaic.p, mixup.p, flip.p))
    assert seen == [(0.8, 0.3, 0.5)] * 4 + [(0.0, 0.0, 0.5)] * 2
    # a run resumed inside the closing epochs starts with them off
    resumed = BatchAugmentSwitchHook(close_epochs=2)
    mosaic.p = 0.8
    runner = fake_runner(5, 6, [mosaic])
    resumed.before_train(runner)
    resumed.before_train_epoch(runner)
    assert mosaic.p == 0.0
    with pytest.raises(ConfigError, match='BatchMosaic'):
        BatchAugmentSwitchHook().before_train(fake_runner(0, 6, [flip]))


def test_off_mosaic_draws_nothing():
    """p=0 (the configs' default) leaves the random stream alone: a config with it trains as one without."""
    torch.manual_seed(0)
    BatchMosaic(p=0.0)(coded_images(4), four_samples())
    after = torch.rand(3)
    torch.manual_seed(0)
    assert torch.equal(after, torch.rand(3))


def test_detector_configs_switch_mosaic_by_one_variable():
    from sscma.utils import load_config
    for name in ('fomo_mobnetv2', 'rtmdet_nano_small_data'):
        cfg = load_config(name, dict(mosaic=1.0))
        steps = cfg.model.data_preprocessor.augments
        assert steps[0] == dict(type='BatchMosaic', p=1.0)
        assert any(h['type'] == 'BatchAugmentSwitchHook' for h in cfg.custom_hooks)
        assert load_config(name).model.data_preprocessor.augments[0]['p'] == 0.0
    with pytest.raises(ConfigError, match='mosaic=2'):
        load_config('fomo_mobnetv2', dict(mosaic=2))
