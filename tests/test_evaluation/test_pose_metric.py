"""OKS AP and PCK on hand-made predictions, written into the exported graph's packed tensor at a non-square input
and decoded by the task (outside-the-graph NMS + letterbox back to images of other sizes, non-square)."""
import numpy as np
import pytest
import torch

from sscma.datasets import PoseDataset
from sscma.datasets.pose_builtin import write_pose_split, write_yolo_pose
from sscma.registry import METRICS, MODELS
from sscma.tasks import task_of
from sscma.utils import load_config

CFG = 'configs/pose/yoloxpose_nano_192.py'
INPUT_WH = (96, 64)  # network input (width, height); the files are 192x192 ... 320x240 and non-square
COCO_SIGMAS = np.array([0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107,
                        0.087, 0.087, 0.089, 0.089])


@pytest.fixture(scope='module', params=['coco', 'yolo'])
def setup(request, tmp_path_factory):
    """The same images as a COCO-keypoints and as a YOLO-pose export: every value below holds for both."""
    cfg = load_config(CFG, {'imgsz': INPUT_WH})
    model = MODELS.build(cfg.model).eval()
    model.test_cfg = dict(score_thr=0.01, nms_thr=1.0)  # no NMS: overlapping figures all stay
    root = tmp_path_factory.mktemp('pose_metric')
    write_pose_split(root / 'test', 'figures', 8, 11)
    if request.param == 'yolo':
        root = write_yolo_pose(root, tmp_path_factory.mktemp('pose_metric_yolo') / 'export')
    ds = PoseDataset(data_root=str(root), split='test', pipeline=cfg.test_pipeline, test_mode=True)
    assert ds.format == request.param
    samples = []
    for i in range(len(ds)):
        sample = ds[i]['data_samples']
        sample.set_metainfo(dict(batch_input_shape=(INPUT_WH[1], INPUT_WH[0])))
        samples.append(sample)
    shapes = {tuple(s.metainfo['ori_shape']) for s in samples}
    assert len(shapes) > 1 and all(h != w for h, w in shapes if (h, w) != (192, 192))
    return model, ds, samples


def _labelled(sample):
    return [a for a in sample.metainfo['raw_ann_info'] or [] if a['num_keypoints'] > 0]


def _packed(model, sample, anns, shift=None):
    """The packed graph output of one image with one cell per annotation, built from the annotations in image
    pixels: the letterbox keeps the aspect ratio and centres the image in the input."""
    h, w = sample.metainfo['ori_shape'][:2]
    in_w, in_h = INPUT_WH
    s = min(in_w / w, in_h / h)
    to_input = lambda xy: (np.asarray(xy, np.float64) - [w / 2, h / 2]) * s + [in_w / 2, in_h / 2]  # noqa: E731
    k = model.head.num_keypoints
    lo, hi = model.head.log_half_range
    rows = []
    for j, ann in enumerate(anns):
        kpts = np.asarray(ann['keypoints'], np.float64).reshape(k, 3)
        xy = kpts[:, :2] + (shift(ann, kpts) if shift else 0)
        x, y, bw, bh = ann['bbox']
        centre = to_input([x + bw / 2, y + bh / 2]) / [in_w, in_h]
        log_half = np.log(np.array([bw, bh]) * s / 2 / [in_w, in_h])
        rows.append(np.concatenate([[1.0, 0.95 - 0.01 * j], centre, (log_half - lo) / (hi - lo),
                                    (to_input(xy) / [in_w, in_h]).reshape(-1), np.ones(k)]))
    return torch.tensor(np.asarray(rows), dtype=torch.float32)[None]


def _evaluate(model, ds, samples, pick=lambda anns: anns, shift=None):
    metric = METRICS.build(dict(type='PoseMetric', score_mode='bbox', nms_mode='none'))
    metric.dataset_meta = ds.metainfo
    task = task_of(model)
    for sample in samples:
        anns = pick(_labelled(sample))
        if not anns:
            continue
        out = task.postprocess(model, _packed(model, sample, anns, shift), [sample.clone()])
        metric.process([], [out[0].to_dict()])
    return metric.evaluate(len(samples))


def test_truth_scores_ap_one(setup):
    model, ds, samples = setup
    res = _evaluate(model, ds, samples)
    for key in ('coco/AP', 'coco/AP .5', 'coco/AP .75', 'coco/AR', 'coco/PCK@0.1', 'coco/PCK@0.1/left_wrist'):
        assert res[key] == pytest.approx(1.0, abs=1e-9), key


def test_known_oks_gives_known_ap(setup):
    """Every labelled keypoint moved so that each object's OKS is 0.82: a true positive at the OKS thresholds
    0.50 ... 0.80 (7 of 10), a false positive at 0.85 ... 0.95: AP 0.7, AP .5 and AP .75 1."""
    model, ds, samples = setup

    def shift(ann, kpts):
        d = 2 * COCO_SIGMAS * np.sqrt(-2 * ann['area'] * np.log(0.82))  # exp(-d^2 / (2 area (2 sigma)^2)) = 0.82
        x0, _, bw, _ = ann['bbox']
        towards_centre = np.where(kpts[:, 0] < x0 + bw / 2, 1.0, -1.0)
        return np.stack([d * towards_centre, np.zeros_like(d)], 1)

    res = _evaluate(model, ds, samples, shift=shift)
    assert res['coco/AP'] == pytest.approx(0.7, abs=1e-9)
    assert res['coco/AP .5'] == pytest.approx(1.0, abs=1e-9) and res['coco/AP .75'] == pytest.approx(1.0, abs=1e-9)


def test_missed_objects_give_the_interpolated_ap(setup):
    """The first object of each image found exactly, the others missed: precision 1 up to recall m / G, so COCO's
    101-point AP is (floor(100 m / G) + 1) / 101."""
    model, ds, samples = setup
    total = sum(len(_labelled(s)) for s in samples)
    found = sum(1 for s in samples if _labelled(s))
    assert found < total
    res = _evaluate(model, ds, samples, pick=lambda anns: anns[:1])
    assert res['coco/AP'] == pytest.approx((np.floor(100 * found / total + 1e-9) + 1) / 101, abs=1e-9)
    assert res['coco/AR'] == pytest.approx(found / total, abs=1e-9)
