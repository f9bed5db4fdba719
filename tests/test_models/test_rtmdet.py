"""The YOLO-class detector built from mmdet parts: config, decoding on hand-made maps, mAP vs pycocotools."""
import json

import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from sscma.registry import METRICS, MODELS
from sscma.utils import load_config

CFG = 'configs/rtmdet/rtmdet_nano_192.py'


@pytest.fixture(scope='module')
def model():
    cfg = load_config(CFG, {'num_classes': 3})
    m = MODELS.build(cfg.model)
    m.eval()
    return m


def test_tensor_mode_gives_raw_maps(model):
    cls_scores, bbox_preds = model(torch.zeros(1, 3, 192, 192), mode='tensor')
    assert [tuple(c.shape) for c in cls_scores] == [(1, 3, 24, 24), (1, 3, 12, 12), (1, 3, 6, 6)]
    assert [tuple(b.shape) for b in bbox_preds] == [(1, 4, 24, 24), (1, 4, 12, 12), (1, 4, 6, 6)]


def test_decoding_hand_made_maps(model):
    # one confident point at stride 8, cell (x=5, y=3) -> centre (40, 24); distances (l, t, r, b) = 8, 4, 12, 6
    cls = [torch.full((1, 3, s, s), -10.0) for s in (24, 12, 6)]
    reg = [torch.zeros(1, 4, s, s) for s in (24, 12, 6)]
    cls[0][0, 2, 3, 5] = 10.0
    reg[0][0, :, 3, 5] = torch.tensor([8.0, 4.0, 12.0, 6.0])  # forward() already scaled them to pixels
    meta = dict(img_shape=(192, 192), ori_shape=(96, 96), scale_factor=(2.0, 2.0))
    res = model.bbox_head.predict_by_feat(cls, reg, batch_img_metas=[meta], rescale=True)[0]
    assert res.labels[0].item() == 2 and res.scores[0].item() > 0.99
    assert torch.allclose(res.bboxes[0], torch.tensor([32.0, 20.0, 52.0, 30.0]) / 2, atol=1e-4)


def test_map_matches_pycocotools(tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    gt_boxes = {0: [[10, 10, 40, 40, 0], [50, 50, 90, 80, 1]], 1: [[5, 5, 30, 25, 1]]}
    preds = {0: [[12, 11, 41, 39, 0, 0.9], [52, 48, 88, 82, 1, 0.8], [0, 0, 20, 20, 0, 0.3]],
             1: [[40, 40, 60, 60, 1, 0.7], [6, 4, 29, 27, 1, 0.6]]}
    classes = ('a', 'b')
    metric = METRICS.build(dict(type='mmdet.CocoMetric', metric='bbox', outfile_prefix=str(tmp_path / 'r')))
    metric.dataset_meta = dict(classes=classes)
    samples = []
    for img_id in (0, 1):
        p = np.array(preds[img_id], dtype=np.float32)
        samples.append(dict(
            img_id=img_id, ori_shape=(100, 100),
            instances=[dict(bbox=b[:4], bbox_label=b[4], ignore_flag=0) for b in gt_boxes[img_id]],
            pred_instances=dict(bboxes=torch.from_numpy(p[:, :4]), scores=torch.from_numpy(p[:, 5]),
                                labels=torch.from_numpy(p[:, 4]).long())))
    metric.process({}, samples)
    ours = metric.evaluate(size=2)

    # the same evaluation written directly with pycocotools
    gt = dict(images=[dict(id=i, width=100, height=100) for i in (0, 1)],
              categories=[dict(id=i, name=n) for i, n in enumerate(classes)], annotations=[])
    for img_id, boxes in gt_boxes.items():
        for x0, y0, x1, y1, c in boxes:
            gt['annotations'].append(dict(id=len(gt['annotations']) + 1, image_id=img_id, category_id=c, iscrowd=0,
                                          bbox=[x0, y0, x1 - x0, y1 - y0], area=(x1 - x0) * (y1 - y0)))
    (tmp_path / 'gt.json').write_text(json.dumps(gt))
    coco = COCO(str(tmp_path / 'gt.json'))
    dets = [dict(image_id=i, category_id=int(c), bbox=[x0, y0, x1 - x0, y1 - y0], score=s)
            for i, ps in preds.items() for x0, y0, x1, y1, c, s in ps]
    ev = COCOeval(coco, coco.loadRes(dets), 'bbox')
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert ours['coco/bbox_mAP'] == pytest.approx(round(ev.stats[0], 3), abs=1e-3)
    assert ours['coco/bbox_mAP_50'] == pytest.approx(round(ev.stats[1], 3), abs=1e-3)
    assert 0 < ours['coco/bbox_mAP'] < 1
