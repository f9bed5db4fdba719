"""sscma.ops.lite_ext: mmcv's nms on torchvision, equal to mmcv's compiled op (where both are installed) on random
boxes with ties, duplicates, empty inputs, both offsets and per-class offsets; RTMDet's predictions on the
bundled test split identical with either; every other op refused naming the compiled install."""
import importlib.machinery
import importlib.util
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from sscma.ops import CompiledOpMissing, has_compiled_ops, lite_ext

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def nms_module():
    """``mmcv.ops.nms`` the module (``mmcv.ops`` exports a function of the same name)."""
    import mmcv.ops  # noqa: F401
    return sys.modules['mmcv.ops.nms']


def compiled_ext():
    """mmcv's compiled ``_ext``, loaded from its file even when ``mmcv._ext`` is the lite module."""
    if not has_compiled_ops():
        pytest.skip('mmcv without compiled ops (mmcv-lite): nothing to compare with')
    locations = list(importlib.util.find_spec('mmcv').submodule_search_locations)
    spec = importlib.machinery.PathFinder.find_spec('_ext', locations)
    spec.name = 'mmcv._ext'
    module = sys.modules.get('mmcv._ext')
    if module is not None and module is not lite_ext:
        return module
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def random_case(gen, n):
    """Boxes on a coarse grid (exact duplicates and equal IoUs) with scores drawn from few values (ties)."""
    xy = torch.randint(0, 40, (n, 2), generator=gen).float() * 2
    wh = torch.randint(1, 25, (n, 2), generator=gen).float() * 2
    boxes = torch.cat([xy, xy + wh], 1)
    if n and torch.rand(1, generator=gen) < 0.3:  # some exact duplicates
        k = int(torch.randint(0, n, (1, ), generator=gen))
        boxes[:k // 2] = boxes[k // 2:k // 2 * 2]
    levels = int(torch.randint(1, 12, (1, ), generator=gen))
    scores = torch.randint(0, levels, (n, ), generator=gen).float() / levels + 0.01
    return boxes, scores


def test_nms_equals_the_compiled_op_on_random_cases():
    ext = compiled_ext()
    gen = torch.Generator().manual_seed(0)
    kept = 0
    for case in range(3000):
        n = [0, 1, 2][case] if case < 3 else int(torch.randint(0, 120, (1, ), generator=gen))
        boxes, scores = random_case(gen, n)
        iou = [0.0, 0.3, 0.5, 0.65, 0.7, 1.0][case % 6]
        for offset in (0, 1):
            want = ext.nms(boxes, scores, iou_threshold=iou, offset=offset)
            got = lite_ext.nms(boxes, scores, iou_threshold=iou, offset=offset)
            assert got.dtype == want.dtype == torch.long
            assert torch.equal(got, want), (case, n, iou, offset)
            kept += len(got)
    assert kept > 10000  # the cases did keep and drop boxes


def test_batched_nms_with_class_offsets_equals_the_compiled_op(monkeypatch):
    mmcv_nms = nms_module()
    compiled = compiled_ext()
    gen = torch.Generator().manual_seed(1)
    for case in range(500):
        n = int(torch.randint(1, 200, (1, ), generator=gen))  # mmcv.ops.batched_nms itself fails on none
        boxes, scores = random_case(gen, n)
        labels = torch.randint(0, 5, (n, ), generator=gen)
        cfg = dict(type='nms', iou_threshold=[0.45, 0.6, 0.65][case % 3])
        monkeypatch.setattr(mmcv_nms, 'ext_module', compiled)
        want_dets, want_keep = mmcv_nms.batched_nms(boxes, scores, labels, cfg)
        monkeypatch.setattr(mmcv_nms, 'ext_module', lite_ext)
        got_dets, got_keep = mmcv_nms.batched_nms(boxes, scores, labels, cfg)
        assert torch.equal(got_keep, want_keep) and torch.equal(got_dets, want_dets), case


def test_rtmdet_predictions_on_the_bundled_test_split_are_identical(monkeypatch):
    """A random RTMDet-nano (many overlapping low-confidence boxes: NMS does most of the work) on every image of
    the bundled test split, once with the compiled nms and once with the lite one."""
    from mmengine.dataset import pseudo_collate

    from sscma.registry import DATASETS, MODELS
    from sscma.utils import load_config, register_all_modules
    mmcv_nms = nms_module()
    compiled = compiled_ext()
    register_all_modules()
    cfg = load_config(osp.join(REPO, 'configs', 'rtmdet', 'rtmdet_nano_96.py'))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_var.uniform_(0.5, 2.0)
            m.running_mean.normal_(0, 0.1)
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    batches = [pseudo_collate([dataset[i] for i in range(s, min(s + 8, len(dataset)))])
               for s in range(0, len(dataset), 8)]

    def predict(ext):
        monkeypatch.setattr(mmcv_nms, 'ext_module', ext)
        with torch.no_grad():
            return [r.pred_instances for b in batches for r in model.test_step(b)]

    want, got = predict(compiled), predict(lite_ext)
    assert len(want) == len(dataset) >= 20
    assert sum(len(w) for w in want) > 10 * len(want)
    for w, g in zip(want, got):
        assert torch.equal(g.bboxes, w.bboxes) and torch.equal(g.scores, w.scores)
        assert torch.equal(g.labels, w.labels)


def test_other_ops_name_the_compiled_install():
    with pytest.raises(CompiledOpMissing, match=r"'roi_align_forward'.*SSCMA_MMCV=full"):
        lite_ext.roi_align_forward(torch.zeros(1))
    with pytest.raises(AttributeError):
        lite_ext.__path__  # noqa: B018  (not a package: the import system must not treat it as one)


def test_lite_route_imports_the_zoo_without_compiled_ops():
    """``SSCMA_MMCV=lite``: mmcv._ext is the provider, mmdet/mmpose import, a bad value is refused by name."""
    code = ('import sys, sscma, mmdet.models, mmpose.models, mmdet.datasets; from mmcv.ops import nms; '
            'print(sys.modules["mmcv._ext"].__name__)')
    env = dict(os.environ, SSCMA_MMCV='lite', PYTHONPATH=REPO)
    out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == 'sscma.ops.lite_ext'
    env['SSCMA_MMCV'] = 'compiled'
    out = subprocess.run([sys.executable, '-c', 'import sscma'], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode != 0 and 'SSCMA_MMCV=\'compiled\'' in out.stderr and '"lite"' in out.stderr
