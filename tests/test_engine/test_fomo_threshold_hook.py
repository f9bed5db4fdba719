"""FomoThresholdHook: the decoding threshold picked for the best checkpoint on the validation images (a fake
runner whose model decodes fixed scores at the head's threshold), and what a real run's best checkpoint tests at."""
import glob
import json
import logging
import os.path as osp
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.hooks import CheckpointHook
from mmengine.structures import InstanceData

from sscma.engine.hooks import FomoThresholdHook

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


class ScoredModel(torch.nn.Module):
    """Decodes fixed predictions of one 96x64 image (scale factor (0.5, 0.25)): those above head.score_thr."""

    def __init__(self, scores, hits):
        super().__init__()
        self.head = SimpleNamespace(score_thr=0.5)
        self.scores, self.hits = scores, hits

    def val_step(self, data):
        sample = DetDataSample(metainfo=dict(scale_factor=(0.5, 0.25), fomo_stride=8))
        truth = torch.tensor([[40. * i, 0., 40. * i + 20, 40.] for i in range(4)])  # centres (10 + 40 i, 20)
        sample.gt_instances = InstanceData(bboxes=truth, labels=torch.zeros(4, dtype=torch.long))
        points = torch.tensor([[10. + 40 * i if hit else 500., 20.] for i, hit in enumerate(self.hits)])
        keep = torch.tensor(self.scores) > self.head.score_thr
        sample.pred_instances = InstanceData(points=points[keep], scores=torch.tensor(self.scores)[keep],
                                             labels=torch.zeros(int(keep.sum()), dtype=torch.long))
        return [sample]


class Loader(list):
    dataset = SimpleNamespace(metainfo=dict(classes=['a']))


def run_hook(tmp_path, model, options):
    """The hook at the end of a fake run whose best checkpoint carries ``options``; those it leaves there."""
    best = str(tmp_path / 'best.pth')
    torch.save(dict(state_dict={}, meta=dict(config_source=dict(entry='a.py', files={}, options=options))), best)
    saver = CheckpointHook(interval=1, save_best='fomo/f1', rule='greater')
    saver.best_ckpt_path = best
    runner = SimpleNamespace(model=model, hooks=[saver], logger=logging.getLogger('test'), val_loop=object(),
                             val_dataloader=Loader([0]))
    FomoThresholdHook().after_train(runner)
    return torch.load(best, weights_only=True)['meta']['config_source']['options']


@pytest.mark.parametrize('scores, hits, want', [
    # two true objects score high, two false ones 0.6 and 0.7: above 0.7 (and 0.75) F1 is 2 * 2 / (2 + 4)
    ([0.9, 0.8, 0.7, 0.6], [True, True, False, False], 0.7),
    # a recall-bound model: every prediction is right, the lowest candidate keeps them all
    ([0.9, 0.45, 0.35, 0.6], [True, True, True, True], 0.3),
    # nothing scores over 0.3: every F1 is 0, the config's 0.5 stays
    ([0.2, 0.1, 0.2, 0.1], [True, True, True, True], 0.5),
])
def test_the_best_checkpoint_gets_the_f1_best_threshold(scores, hits, want, tmp_path):
    model = ScoredModel(scores, hits)
    options = run_hook(tmp_path, model, dict(data_root='/d'))
    assert options == {'data_root': '/d', 'model.head.score_thr': pytest.approx(want)}
    assert model.head.score_thr == 0.5  # the run's own model (the last weights) is left as it was


def test_the_config_threshold_is_a_candidate_too():
    # a config decoding at 0.1, below every candidate: the predictions at 0.2 and 0.25 are right, so it stays
    model = ScoredModel([0.9, 0.8, 0.25, 0.2], [True, True, True, True])
    assert FomoThresholdHook().pick(model, Loader([0]), configured=0.1) == (0.1, 1.0, 1.0, 1)
    model = ScoredModel([0.9, 0.8, 0.25, 0.2], [True, True, False, False])
    assert FomoThresholdHook().pick(model, Loader([0]), configured=0.1) == (0.3, pytest.approx(2 / 3), 0.5, 1)


def test_a_threshold_the_user_gives_is_kept(tmp_path):
    model = ScoredModel([0.9, 0.8, 0.7, 0.6], [True, True, False, False])
    model.head.score_thr = 0.55  # what --cfg-options model.head.score_thr=0.55 builds
    assert run_hook(tmp_path, model, {'model.head.score_thr': 0.55}) == {'model.head.score_thr': 0.55}
    for bad in ([], [0.5, 1.0], [-0.1]):
        with pytest.raises(ValueError, match='thresholds'):
            FomoThresholdHook(thresholds=bad)


def test_the_best_checkpoint_tests_at_the_threshold_picked_for_it(roboflow_root, tmp_path):
    """The small-data config on 112x84 files at a 64x48 input: the hook's F1 at the config's threshold is the
    best validation score; testing the best checkpoint on the validation split gives the F1 the hook reported
    at the threshold it picked."""
    work = str(tmp_path / 'w')
    opts = [f'data_root={roboflow_root}', 'epochs=4', 'imgsz=(64,48)', 'workers=0', 'batch=4']
    proc = subprocess.run([sys.executable, 'tools/train.py', 'fomo_mobnetv2_small_data', '--work-dir', work,
                           '--cfg-options', *opts], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    said = re.search(r'FOMO score_thr ([\d.]+) for (\S+): validation F1 ([\d.]+) there, ([\d.]+) at the config\'s 0.5',
                     proc.stdout + proc.stderr)
    assert said, (proc.stdout + proc.stderr)[-2000:]
    best = json.load(open(osp.join(work, 'results.json')))['best']
    assert float(said.group(4)) == pytest.approx(best['score'], abs=5e-5)
    checkpoint = said.group(2)
    assert checkpoint == glob.glob(osp.join(work, 'best_*.pth'))[0]
    options = torch.load(checkpoint, map_location='cpu', weights_only=False)['meta']['config_source']['options']
    assert options['model.head.score_thr'] == float(said.group(1))
    proc = subprocess.run([sys.executable, 'tools/test.py', checkpoint, '--work-dir', str(tmp_path / 't'),
                           '--cfg-options', 'test_dataloader.dataset.split=valid', 'workers=0'], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    tested = json.load(open(tmp_path / 't' / 'results.json'))['test']['fomo/f1']
    assert tested == pytest.approx(float(said.group(3)), abs=5e-5)
