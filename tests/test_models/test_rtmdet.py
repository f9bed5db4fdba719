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


def test_export_packing_round_trip(model):
    """The exported graph's single (B, N, C + 4) output unpacks to the head's maps."""
    from sscma.tasks.detection import pack_detections, unpack_detections
    torch.manual_seed(0)
    cls = [torch.randn(2, 3, s, s) * 3 for s in (24, 12, 6)]
    reg = [torch.rand(2, 4, s, s) * 50 for s in (24, 12, 6)]
    packed = pack_detections((cls, reg), (192, 192))
    assert packed.shape == (2, 24 * 24 + 12 * 12 + 6 * 6, 7)
    assert 0 <= float(packed.min()) and float(packed.max()) <= 1  # one int8 scale fits it all
    assert torch.allclose(packed[0, 24 * 5 + 7, :3], cls[0][0, :, 5, 7].sigmoid())  # row-major cells
    cls2, reg2 = unpack_detections(packed, [(24, 24), (12, 12), (6, 6)], (192, 192))
    for a, b in zip(cls, cls2):  # scores survive (logits beyond +-13.8 saturate at 1 - 1e-6)
        assert torch.allclose(a.sigmoid(), b.sigmoid(), atol=1e-5)
    for a, b in zip(reg, reg2):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match='cells'):
        unpack_detections(packed, [(24, 24), (12, 12)], (192, 192))


def test_backend_model_detections_equal_pytorch(tmp_path):
    """tools/test.py on an exported detector: same boxes as model.predict through mmdet's own decoding."""
    from mmdet.structures import DetDataSample

    from sscma.deploy.backend_model import BackendModel
    from sscma.deploy.targets.onnx import export_onnx_fp32
    from sscma.deploy.wrapper import wrap_for_export
    torch.manual_seed(0)  # its own model: the module's one depends on which tests ran before
    model = MODELS.build(load_config(CFG, {'num_classes': 3}).model).eval()
    for m in model.modules():  # a random model with non-trivial BatchNorm statistics and some confident cells
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_var.uniform_(0.5, 2.0)
            m.running_mean.normal_(0, 0.1)
    path = str(tmp_path / 'det.onnx')
    export_onnx_fp32(wrap_for_export(model), (3, 192, 192), path)
    backend = BackendModel(model, path, input_hw=(192, 192))
    raw = torch.rand(2, 3, 192, 192) * 255
    meta = dict(img_shape=(192, 192), ori_shape=(192, 192), scale_factor=(1.0, 1.0), batch_input_shape=(192, 192),
                pad_shape=(192, 192))
    samples = [DetDataSample(metainfo=meta) for _ in range(2)]
    mean = model.data_preprocessor.mean.view(1, -1, 1, 1)
    std = model.data_preprocessor.std.view(1, -1, 1, 1)
    with torch.no_grad():
        want = model.predict((raw - mean) / std, [DetDataSample(metainfo=meta) for _ in range(2)])
        got = backend(raw, samples, mode='predict')
    for w, g in zip(want, got):
        assert len(w.pred_instances) > 0 and len(g.pred_instances) == len(w.pred_instances)
        assert torch.allclose(g.pred_instances.bboxes, w.pred_instances.bboxes, atol=1e-2)
        assert torch.allclose(g.pred_instances.scores, w.pred_instances.scores, atol=1e-4)
        assert torch.equal(g.pred_instances.labels, w.pred_instances.labels)
