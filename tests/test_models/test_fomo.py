import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

import numpy as np

from sscma.models.utils import bbox_to_centroid_mask, bbox_to_centroid_masks
from sscma.registry import MODELS


def test_centroid_mask_hand_computed():
    boxes = torch.tensor([[0., 0., 16., 16.],  # centre (8, 8) -> cell (1, 1)
                          [40., 8., 56., 24.],  # centre (48, 16) -> cell x=6, y=2
                          [90., 90., 100., 100.]])  # centre (95, 95) beyond a 96 px map -> clamped to (11, 11)
    labels = torch.tensor([0, 1, 1])
    mask = bbox_to_centroid_mask(boxes, labels, (12, 12), stride=8)
    expected = torch.zeros(12, 12, dtype=torch.long)
    expected[1, 1] = 1
    expected[2, 6] = 2
    expected[11, 11] = 2
    assert torch.equal(mask, expected)


def test_centroid_mask_small_box_wins_shared_cell():
    boxes = torch.tensor([[8., 8., 15., 15.], [0., 0., 24., 24.]])  # both centres in cell (1, 1)
    mask = bbox_to_centroid_mask(boxes, torch.tensor([0, 1]), (4, 4), stride=8)
    assert mask[1, 1] == 1  # the small box (label 0)
    assert bbox_to_centroid_mask(torch.zeros(0, 4), torch.zeros(0), (4, 4), 8).sum() == 0


def _one_by_one(boxes, labels, hw, stride):
    """The rule written out: boxes painted largest first (equal areas in their listed order), later wins."""
    h, w = hw
    mask = torch.zeros(h, w, dtype=torch.long)
    area = [(b[2] - b[0]) * (b[3] - b[1]) for b in boxes.tolist()]
    for i in sorted(range(len(area)), key=lambda i: (-area[i], i)):
        x0, y0, x1, y1 = boxes[i].tolist()
        x = min(max(int(np.floor((x0 + x1) / 2 / stride)), 0), w - 1)
        y = min(max(int(np.floor((y0 + y1) / 2 / stride)), 0), h - 1)
        mask[y, x] = int(labels[i]) + 1
    return mask


def test_batched_centroid_masks_equal_one_image_at_a_time():
    """Many small boxes per image on a non-square 7x12 map (shared cells, equal areas, centres beyond the
    border, an empty image), as a batch and image by image."""
    rng = np.random.default_rng(0)
    boxes, labels = [], []
    for n in (30, 0, 1, 12, 25):
        xy = rng.uniform(-10, 100, (n, 2))
        wh = rng.choice([4.0, 8.0, 12.0], (n, 2))  # repeated sizes: equal areas share cells
        boxes.append(torch.tensor(np.concatenate([xy, xy + wh], 1), dtype=torch.float32).reshape(-1, 4))
        labels.append(torch.tensor(rng.integers(0, 3, n)))
    masks = bbox_to_centroid_masks(boxes, labels, (7, 12), stride=8)
    assert masks.shape == (5, 7, 12) and masks.dtype == torch.long
    for mask, b, c in zip(masks, boxes, labels):
        assert torch.equal(mask, _one_by_one(b, c, (7, 12), 8))
        assert torch.equal(bbox_to_centroid_mask(b, c, (7, 12), 8), mask)
    assert masks[1].sum() == 0 and (masks[0] > 0).sum() > 10


def _head(**kw):
    return MODELS.build(dict(type='FomoHead', in_channels=4, num_classes=2, stride=8, **kw))


def test_decode_peaks_and_rescale():
    head = _head(score_thr=0.5)
    probs = torch.zeros(1, 3, 6, 6)
    probs[:, 0] = 1.0
    probs[0, :, 2, 3] = torch.tensor([0.1, 0.9, 0.0])  # class 0 at cell (x=3, y=2)
    probs[0, :, 2, 4] = torch.tensor([0.2, 0.8, 0.0])  # weaker neighbour: suppressed
    probs[0, :, 5, 0] = torch.tensor([0.3, 0.0, 0.7])  # class 1 at cell (x=0, y=5)
    probs[0, :, 0, 0] = torch.tensor([0.6, 0.0, 0.4])  # below threshold
    res = head.predict_by_probs(probs, [dict(scale_factor=(0.5, 0.25))])[0]
    order = torch.argsort(res.labels)
    assert res.labels[order].tolist() == [0, 1]
    # cell centres in input pixels (28, 20) and (4, 44), divided by the scale factor
    assert torch.allclose(res.points[order], torch.tensor([[56., 80.], [8., 176.]]))
    assert torch.allclose(res.scores[order], torch.tensor([0.9, 0.7]))


def test_loss_decreases_on_one_batch():
    torch.manual_seed(0)
    model = MODELS.build(dict(type='Fomo', backbone=dict(type='MobileNetV2', widen_factor=0.35, out_indices=(2, )),
                              head=dict(type='FomoHead', num_classes=2),
                              data_preprocessor=dict(type='mmdet.DetDataPreprocessor')))
    assert model.head.stride == 8 and model.head.conv[0].in_channels == 16
    sample = DetDataSample(metainfo=dict(img_shape=(64, 64), scale_factor=(1.0, 1.0)))
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[8., 8., 24., 24.]]), labels=torch.tensor([1]))
    inputs = torch.rand(1, 3, 64, 64)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    losses = []
    for _ in range(15):
        loss = model(inputs, [sample], mode='loss')['loss_cls']
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.5
    with torch.no_grad():  # still in train mode: BatchNorm uses the batch statistics it was fitted with
        pred = model(inputs, [sample], mode='predict')[0].pred_instances
    assert 1 in pred.labels.tolist()
