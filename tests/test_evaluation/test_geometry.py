"""Metrics of every geometric task are right whatever the image file's size: FOMO centroids, RTMDet boxes and
PFLD keypoints go through the configs' real data pipelines on images smaller, larger and of another aspect
than the network input, and score exactly what hand-made predictions should score."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.evaluator import Evaluator

from sscma.registry import DATASETS, MODELS
from sscma.utils import load_config
from tests.scenes import ColourOracle, make_scenes, scene_boxes, write_coco_scenes

FOMO_CFG = 'configs/fomo/fomo_mobnetv2.py'
RTMDET_CFG = 'configs/rtmdet/rtmdet_nano_96.py'
PFLD_CFG = 'configs/pfld/pfld_mobilenetv2_meter_112.py'
# (width, height) of the image files; the networks take 96x96 (FOMO, RTMDet) and 112x112 (PFLD)
SIZES = [(128, 128), (160, 120), (320, 240), (64, 48), (120, 160)]
SCENES = make_scenes(12, seed=3)


def _dataset(cfg_file, root, split='valid', **options):
    cfg = load_config(cfg_file, dict(data_root=str(root), **options))
    loader = cfg.get(f'{"val" if split == "valid" else split}_dataloader')
    return DATASETS.build(loader.dataset), cfg


def _batches(dataset, size=4):
    for start in range(0, len(dataset), size):
        yield pseudo_collate([dataset[i] for i in range(start, min(start + size, len(dataset)))])


def _evaluate(metric_cfg, dataset, predict):
    """Run ``predict(batch) -> data samples`` over the dataset and evaluate like mmengine's ValLoop."""
    evaluator = Evaluator(metric_cfg)
    evaluator.dataset_meta = dataset.metainfo
    for batch in _batches(dataset):
        evaluator.process(data_samples=predict(batch), data_batch=batch)
    return evaluator.evaluate(len(dataset))


@pytest.fixture(scope='module')
def fomo_model():
    cfg = load_config(FOMO_CFG, {'num_classes': 2})
    return MODELS.build(cfg.model).eval()


def _fomo_predict(model, perturb=None):
    oracle = ColourOracle(stride=model.head.stride)

    def predict(batch):
        data = model.data_preprocessor(batch, training=False)
        raw = torch.stack([torch.as_tensor(x) for x in batch['inputs']]).float()  # BGR pixels as fed
        probs = oracle(raw)
        if perturb is not None:
            probs = perturb(probs)
        samples = data['data_samples']
        for s, res in zip(samples, model.head.predict_by_probs(probs, [s.metainfo for s in samples])):
            s.pred_instances = res
            s.set_metainfo(dict(fomo_stride=model.head.stride))
        return samples

    return predict


def _num_objects(scenes):
    return sum(len(s) for s in scenes)


@pytest.mark.parametrize('size', SIZES + [(96, 96)], ids=lambda s: f'{s[0]}x{s[1]}')
def test_fomo_perfect_centroids_score_one_at_any_size(tmp_path, fomo_model, size):
    write_coco_scenes(str(tmp_path), {'valid': SCENES}, size)
    dataset, cfg = _dataset(FOMO_CFG, tmp_path)
    # ground truth reaches the metric in original pixels: exactly the boxes of the annotation file
    sample = dataset[1]['data_samples']
    assert sample.ori_shape == (size[1], size[0]) and sample.img_shape == (96, 96)
    np.testing.assert_allclose(sample.gt_instances.bboxes.numpy(), scene_boxes(SCENES[1], *size)[:, :4], atol=1e-4)
    res = _evaluate(cfg.val_evaluator, dataset, _fomo_predict(fomo_model))
    n = _num_objects(SCENES)
    assert (res['fomo/tp'], res['fomo/fp'], res['fomo/fn']) == (n, 0, 0), res
    assert res['fomo/f1'] == 1.0


def test_fomo_hand_made_errors_give_exact_counts(tmp_path, fomo_model):
    """On 160x120 files: drop one detection, give one the other class, move one two cells, add one on an
    empty image, leave two right: exactly 2 TP, 3 FP, 3 FN."""
    scenes = [[(0, 0.3, 0.3, 0.08), (1, 0.7, 0.7, 0.08)], [(0, 0.25, 0.7, 0.08), (1, 0.75, 0.3, 0.08)],
              [(1, 0.5, 0.5, 0.08)], []]
    write_coco_scenes(str(tmp_path), {'valid': scenes}, (160, 120), ext='.png')
    dataset, cfg = _dataset(FOMO_CFG, tmp_path)

    def cell(probs, b, label):
        ys, xs = torch.nonzero(probs[b, label + 1] > 0.5, as_tuple=True)
        assert len(ys) == 1
        return int(ys[0]), int(xs[0])

    def perturb(probs):
        p = probs.clone()
        y, x = cell(probs, 0, 0)  # image 0, disc: dropped -> FN
        p[0, :, y, x] = torch.tensor([1.0, 0.0, 0.0])
        y, x = cell(probs, 0, 1)  # image 0, block: called a disc -> FP + FN
        p[0, :, y, x] = torch.tensor([0.05, 0.95, 0.0])
        y, x = cell(probs, 1, 0)  # image 1, disc: two cells right -> FP + FN
        p[1, :, y, x] = torch.tensor([1.0, 0.0, 0.0])
        p[1, :, y, x + 2] = torch.tensor([0.05, 0.95, 0.0])
        # image 2, block: left as the oracle found it -> TP
        p[3, :, 1, 1] = torch.tensor([0.05, 0.0, 0.95])  # empty image 3: a block from nowhere -> FP
        return p

    res = _evaluate(cfg.val_evaluator, dataset, _fomo_predict(fomo_model, perturb))
    # TP: image 1 block, image 2 block. FP: wrong class, moved disc, phantom block. FN: dropped disc, the
    # block called a disc, the moved disc.
    assert (res['fomo/tp'], res['fomo/fp'], res['fomo/fn']) == (2, 3, 3), res
    assert np.isclose(res['fomo/disc_precision'], 0.0) and np.isclose(res['fomo/block_recall'], 2 / 3)


def test_fomo_same_scenes_two_resolutions_same_metric(tmp_path, fomo_model):
    """A fixed model that misses every object in the left half of the image: the same scenes written at
    128x128 and at 320x240 score the same counts."""

    def miss_left_half(probs):
        p = probs.clone()
        w = p.shape[-1]
        p[..., :w // 2] = 0.0
        p[:, 0, :, :w // 2] = 1.0
        return p

    # centres kept away from the middle column, so "left half" means the same objects at both sizes
    scenes = [[o for o in s if abs(o[1] - 0.5) > 0.1] for s in SCENES]
    counts = []
    for size in ((128, 128), (320, 240)):
        root = tmp_path / f'{size[0]}x{size[1]}'
        write_coco_scenes(str(root), {'valid': scenes}, size)
        dataset, cfg = _dataset(FOMO_CFG, root)
        res = _evaluate(cfg.val_evaluator, dataset, _fomo_predict(fomo_model, miss_left_half))
        counts.append((res['fomo/tp'], res['fomo/fp'], res['fomo/fn']))
    left = sum(o[1] < 0.5 for s in scenes for o in s)
    assert counts[0] == counts[1] == (_num_objects(scenes) - left, 0, left)


@pytest.fixture(scope='module')
def rtmdet_model():
    cfg = load_config(RTMDET_CFG, {'num_classes': 2})
    return MODELS.build(cfg.model).eval()


def _rtmdet_predict(model, drop_label=None, through_export=False):
    """Perfect raw maps: for each true box, the stride-8 point nearest its centre predicts it exactly (in
    network-input pixels, as the head's forward gives), decoded by mmdet's ``predict_by_feat``."""
    from sscma.deploy.backend_model import postprocess
    from sscma.tasks.detection import pack_detections

    head = model.bbox_head
    strides = [s[0] for s in head.prior_generator.strides]

    def predict(batch):
        data = model.data_preprocessor(batch, training=False)
        samples = data['data_samples']
        h, w = data['inputs'].shape[-2:]
        cls = [torch.full((len(samples), head.num_classes, -(-h // s), -(-w // s)), -12.0) for s in strides]
        reg = [torch.zeros(len(samples), 4, -(-h // s), -(-w // s)) for s in strides]
        for b, s in enumerate(samples):
            scale = np.asarray(s.scale_factor, dtype=np.float64)
            for inst in s.instances:  # the annotation file's boxes (original pixels)
                if inst['bbox_label'] == drop_label:
                    continue
                x0, y0, x1, y1 = np.asarray(inst['bbox'], dtype=np.float64) * np.tile(scale, 2)
                gx, gy = min(int((x0 + x1) / 2 // 8), cls[0].shape[-1] - 1), min(int((y0 + y1) / 2 // 8),
                                                                                 cls[0].shape[-2] - 1)
                px, py = gx * 8, gy * 8  # RTMDet's priors: offset 0
                cls[0][b, inst['bbox_label'], gy, gx] = 12.0
                reg[0][b, :, gy, gx] = torch.tensor([px - x0, py - y0, x1 - px, y1 - py])
        if through_export:  # the exported graph's packed output, decoded as for an .onnx / .tflite file
            packed = pack_detections((cls, reg), (h, w))
            return postprocess(model, packed, samples)
        results = head.predict_by_feat(cls, reg, batch_img_metas=[s.metainfo for s in samples], rescale=True)
        return model.add_pred_to_datasample(samples, results)

    return predict


@pytest.mark.parametrize('size', [(128, 128), (160, 120), (64, 48)], ids=lambda s: f'{s[0]}x{s[1]}')
def test_rtmdet_perfect_boxes_score_map_one_at_any_size(tmp_path, rtmdet_model, size):
    write_coco_scenes(str(tmp_path), {'valid': SCENES}, size, ext='.png')
    dataset, cfg = _dataset(RTMDET_CFG, tmp_path)
    res = _evaluate(cfg.val_evaluator, dataset, _rtmdet_predict(rtmdet_model))
    assert res['coco/bbox_mAP'] == pytest.approx(1.0) and res['coco/bbox_mAP_50'] == pytest.approx(1.0), res
    # one class predicted perfectly, the other not at all: mAP is exactly the mean of 1 and 0
    res = _evaluate(cfg.val_evaluator, dataset, _rtmdet_predict(rtmdet_model, drop_label=1))
    assert res['coco/bbox_mAP_50'] == pytest.approx(0.5) and res['coco/disc_precision'] == pytest.approx(1.0)


def test_rtmdet_exported_output_decodes_to_the_same_boxes(tmp_path, rtmdet_model):
    """The packed output of an exported RTMDet (what tools/test.py decodes for .onnx / .tflite) on 320x240
    files gives the same mAP as the float path."""
    write_coco_scenes(str(tmp_path), {'valid': SCENES}, (320, 240), ext='.png')
    dataset, cfg = _dataset(RTMDET_CFG, tmp_path)
    res = _evaluate(cfg.val_evaluator, dataset, _rtmdet_predict(rtmdet_model, through_export=True))
    assert res['coco/bbox_mAP_50'] == pytest.approx(1.0) and res['coco/bbox_mAP'] > 0.95, res


def _write_meter_coco(root, size, n=6, seed=0):
    """COCO-keypoints files of ``size`` (w, h): noise images with 4 keypoints anywhere inside."""
    import cv2
    rng = np.random.default_rng(seed)
    w, h = size
    folder = osp.join(root, 'valid')
    import os
    os.makedirs(folder, exist_ok=True)
    images, anns, truth = [], [], []
    for i in range(n):
        name = f'm{i}.png'
        cv2.imwrite(osp.join(folder, name), rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        kpts = np.stack([rng.uniform(0, w, 4), rng.uniform(0, h, 4)], 1)
        truth.append(kpts)
        images.append(dict(id=i, file_name=name, width=w, height=h))
        anns.append(dict(id=i + 1, image_id=i, category_id=1, bbox=[0, 0, w, h], num_keypoints=4,
                         keypoints=[float(v) for p in kpts for v in (*p, 2)]))
    cats = [dict(id=1, name='meter', keypoints=['center', 'needle_tip', 'scale_start', 'scale_end'])]
    with open(osp.join(folder, '_annotations.coco.json'), 'w') as f:
        json.dump(dict(images=images, annotations=anns, categories=cats), f)
    return truth


@pytest.mark.parametrize('size', [(160, 120), (120, 160), (64, 48), (320, 240)], ids=lambda s: f'{s[0]}x{s[1]}')
def test_pfld_keypoint_error_in_original_pixels_at_any_size(tmp_path, size):
    """Predictions made from the annotation file alone (normalised by the file's width / height, as a
    perfect network regresses them) score zero error; shifted by 5 % of the input width they score
    exactly 5 % of the file's width over its longer side."""
    truth = _write_meter_coco(str(tmp_path), size)
    dataset, cfg = _dataset(PFLD_CFG, tmp_path, pretrained=False)
    model = MODELS.build(cfg.model).eval()
    w, h = size

    def predict(shift):
        def run(batch):
            samples = model.data_preprocessor(batch, training=False)['data_samples']
            norm = np.stack([truth[int(s.img_id)] / [w, h] for s in samples]) + [shift, 0.0]
            return model.add_pred_to_datasample(torch.as_tensor(norm, dtype=torch.float32), samples)
        return run

    res = _evaluate(cfg.val_evaluator, dataset, predict(0.0))
    assert res['meter/nme'] == pytest.approx(0.0, abs=1e-3) and res['meter/reading_err_mean'] == pytest.approx(
        0.0, abs=1e-3)
    res = _evaluate(cfg.val_evaluator, dataset, predict(0.05))
    assert res['meter/nme'] == pytest.approx(5.0 * w / max(w, h), rel=1e-4)


LETTERBOX = [dict(type='LoadImage'), dict(type='mmdet.Resize', scale=(96, 96), keep_ratio=True),
             dict(type='mmdet.Pad', size=(96, 96), pad_val=dict(img=(114, 114, 114))),
             dict(type='mmdet.LoadAnnotations', with_bbox=True)]


@pytest.mark.parametrize('size', [(160, 120), (120, 160), (64, 48)], ids=lambda s: f'{s[0]}x{s[1]}')
def test_keep_ratio_letterbox_pipelines_score_right(tmp_path, fomo_model, rtmdet_model, size):
    """``keep_ratio=True`` + pad to the input size (letterbox at the top-left, mmdet's way) on non-square
    files: FOMO centroids and RTMDet boxes are mapped back to the file's pixels."""
    write_coco_scenes(str(tmp_path), {'valid': SCENES}, size, ext='.png')
    for cfg_file, model, predict, key in ((FOMO_CFG, fomo_model, _fomo_predict, 'fomo/f1'),
                                          (RTMDET_CFG, rtmdet_model, _rtmdet_predict, 'coco/bbox_mAP_50')):
        cfg = load_config(cfg_file, dict(data_root=str(tmp_path)))
        pack = cfg.val_dataloader.dataset.pipeline[-1]
        cfg.val_dataloader.dataset.pipeline = LETTERBOX + [pack]
        dataset = DATASETS.build(cfg.val_dataloader.dataset)
        sample = dataset[0]['data_samples']
        sx, sy = sample.scale_factor
        assert sx == pytest.approx(sy, rel=0.02) and sx == pytest.approx(96 / max(size), rel=0.02)
        assert tuple(dataset[0]['inputs'].shape[-2:]) == (96, 96)  # padded
        res = _evaluate(cfg.val_evaluator, dataset, predict(model))
        assert res[key] == pytest.approx(1.0), (cfg_file, res)


def test_prediction_pngs_draw_ground_truth_on_the_objects(tmp_path, fomo_model):
    """The validation PNG of a 320x240 file draws each true box around its object (drawn at 192 px)."""
    from types import SimpleNamespace

    from sscma.engine.hooks.prediction_vis_hook import PredictionVisHook
    from sscma.visualization import PALETTE
    scenes = [[(0, 0.3, 0.4, 0.1), (1, 0.7, 0.6, 0.1)]]
    write_coco_scenes(str(tmp_path), {'valid': scenes}, (320, 240), ext='.png')
    dataset, _ = _dataset(FOMO_CFG, tmp_path)
    hook = PredictionVisHook(max_images=1)
    runner = SimpleNamespace(val_dataloader=SimpleNamespace(dataset=dataset), rank=0, model=fomo_model)
    hook.before_val_epoch(runner)
    batch = next(_batches(dataset))
    hook.after_val_iter(runner, 0, batch, _fomo_predict(fomo_model)(batch))
    tile = hook._tiles[0]
    assert tile.shape[:2] == (144, 192)
    for x0, y0, x1, y1, label in scene_boxes(scenes[0], 320, 240) * [0.6, 0.6, 0.6, 0.6, 1]:
        edge = tile[int(round(y0)), int(round(x0)) + 2:int(round(x1)) - 2]  # the box's top edge
        assert (np.abs(edge.astype(int) - PALETTE[int(label)]).sum(1) < 10).mean() > 0.9, (label, edge[:3])
