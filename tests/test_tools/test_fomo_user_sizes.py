"""A short real FOMO training on exports whose images are not the network's input size: the F1 that training
records, the F1 that tools/test.py prints for the same checkpoint and an F1 recomputed here from the saved
predictions and the annotation file alone are the same number."""
import json
import os.path as osp

import numpy as np
import pytest

from tests.scenes import make_scenes, write_coco_scenes
from tests.test_tools.test_train_test import FOMO, run_tool


def independent_f1(ann_file, predictions, stride=8, input_wh=(96, 96)):
    """Greedy one-to-one matching by score of predicted points to box centres of the same class, within one
    output cell (stride / resize scale, per axis) in the file's pixels. Written from the COCO file alone."""
    coco = json.load(open(ann_file))
    label_of = {c['id']: i for i, c in enumerate(sorted((c for c in coco['categories'] if c['id']),
                                                         key=lambda c: c['id']))}
    by_name = {im['file_name']: im for im in coco['images']}
    gts = {im['id']: [] for im in coco['images']}
    for a in coco['annotations']:
        x, y, w, h = a['bbox']
        gts[a['image_id']].append((x + w / 2, y + h / 2, label_of[a['category_id']]))
    tp = fp = fn = 0
    for p in predictions:
        im = by_name[osp.basename(p['img_path'])]
        tol_x, tol_y = stride * im['width'] / input_wh[0], stride * im['height'] / input_wh[1]
        gt = list(gts[im['id']])
        used = [False] * len(gt)
        for i in sorted(range(len(p['scores'])), key=lambda i: -p['scores'][i]):
            (px, py), label = p['points'][i], p['labels'][i]
            best, best_d = None, None
            for j, (gx, gy, gl) in enumerate(gt):
                if used[j] or gl != label or abs(gx - px) > tol_x or abs(gy - py) > tol_y:
                    continue
                d = np.hypot(gx - px, gy - py)
                if best_d is None or d < best_d:
                    best, best_d = j, d
            if best is None:
                fp += 1
            else:
                used[best] = True
                tp += 1
        fn += used.count(False)
    precision, recall = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
    return tp, fp, fn, (2 * precision * recall / (precision + recall) if tp else 0.0)


@pytest.mark.parametrize('size', [(128, 128), (160, 120)], ids=lambda s: f'{s[0]}x{s[1]}')
def test_train_test_and_recomputed_f1_agree(tmp_path, size):
    root = write_coco_scenes(str(tmp_path / 'data'), {'train': make_scenes(64, seed=1), 'valid': make_scenes(24, seed=2),
                                                     'test': make_scenes(8, seed=4)}, size)
    work = str(tmp_path / 'work')
    opts = [f'data_root={root}', 'num_classes=2', 'workers=0', 'batch=8']
    run_tool('train.py', FOMO, '--work-dir', work, '--cfg-options', *opts, 'epochs=6', 'lr=0.01')
    results = json.load(open(osp.join(work, 'results.json')))
    best = results['best']
    assert best['metric'] == 'fomo/f1'
    ckpt, train_f1 = best['checkpoint'], best['score']
    out = osp.join(work, 'valid_predictions.json')
    proc = run_tool('test.py', FOMO, ckpt, '--work-dir', work, '--out', out, '--cfg-options', *opts,
                    'test_dataloader.dataset.split=valid')
    test = json.load(open(osp.join(work, 'results.json')))['test']
    preds = json.load(open(out))
    assert len(preds) == 24 and all(tuple(p['ori_shape']) == (size[1], size[0]) for p in preds)
    tp, fp, fn, f1 = independent_f1(osp.join(root, 'valid', '_annotations.coco.json'), preds)
    assert (test['fomo/tp'], test['fomo/fp'], test['fomo/fn']) == (tp, fp, fn)
    assert test['fomo/f1'] == pytest.approx(f1, abs=1e-9) == pytest.approx(train_f1, abs=1e-9)
    assert f'{f1:.4f}' in proc.stdout + proc.stderr  # what the tool prints
    assert tp >= 5, (tp, fp, fn)  # it learnt something: the equality is not 0 == 0


def test_coco_yolo_voc_exports_of_the_same_data_score_the_same(tmp_path):
    """The same scenes exported as COCO, YOLO and Pascal VOC (files of 128x128, 160x120, 320x240, 64x48, some
    grayscale) train with the same command, and one checkpoint scores the same validation counts on all three."""
    from tests.detection_data import write_detection_scenes
    counts = dict(train=32, valid=12, test=4)
    roots = {fmt: str(tmp_path / fmt) for fmt in ('coco', 'yolo', 'voc')}
    for fmt, root in roots.items():
        write_detection_scenes(root, fmt, counts, seed=3)
    work = str(tmp_path / 'work')
    opts = ['num_classes=3', 'workers=0', 'batch=8']
    run_tool('train.py', FOMO, '--work-dir', work, '--cfg-options', f'data_root={roots["yolo"]}', *opts,
             'max_epochs=8', 'base_lr=0.01')
    ckpt = json.load(open(osp.join(work, 'results.json')))['best']['checkpoint']
    scores = {}
    for fmt, root in roots.items():
        out = str(tmp_path / f'test_{fmt}')
        # a low threshold: a short training's scores are low, and equal counts of nothing would prove nothing
        run_tool('test.py', FOMO, ckpt, '--work-dir', out, '--cfg-options', f'data_root={root}', *opts,
                 'test_dataloader.dataset.split=valid', 'model.head.score_thr=0.1')
        test = json.load(open(osp.join(out, 'results.json')))['test']
        scores[fmt] = (test['fomo/tp'], test['fomo/fp'], test['fomo/fn'], test['fomo/f1'])
    assert scores['coco'] == scores['yolo'] == scores['voc'], scores
    assert scores['coco'][0] > 0, scores  # not 0 == 0
