"""sscma tune: Optuna trials as real training runs, the board filter on measured TFLM arenas, the leaderboard,
the best config as a file training takes, and a search that goes on after it stopped."""
import json
import os.path as osp
import subprocess
import sys

import pytest

from sscma.apis.tune import nested_options, parse_budget
from sscma.apis.tune_report import pareto_front
from sscma.deploy.devices import get_device
from sscma.utils import ConfigError, load_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_budget_and_options():
    assert parse_budget('10m') == 600 and parse_budget('90') == 90 and parse_budget('1.5h') == 5400
    for bad in ('', '-3m', '10 minutes', '0s'):
        with pytest.raises(ConfigError, match='--budget'):
            parse_budget(bad)
    assert nested_options({'a.b': 1, 'a.c': 2, 'd': (3, 4)}) == {'a': {'b': 1, 'c': 2}, 'd': (3, 4)}


def test_best_config_keeps_the_dicts_a_dotted_option_changes(tmp_path):
    """A child config's dict replaces its base's: a dotted option is written as the whole dict it lands in."""
    from sscma.apis.tune_report import write_best_config
    from sscma.utils.packaged_configs import find_config
    path = write_best_config(find_config('fomo/fomo_mobnetv2'), {'model.head.score_thr': 0.4, 'num_classes': 3},
                             {'val_evaluator.tolerance_px': 5.333, 'widen_factor': 0.5, 'init': 'scratch'},
                             str(tmp_path / 'best.py'),
                             'sscma tune: trial 3')
    cfg = load_config(path)
    assert cfg.model.type == 'Fomo' and cfg.model.head.score_thr == 0.4 and cfg.model.head.num_classes == 3
    assert cfg.model.backbone.widen_factor == 0.5 and cfg.widen_factor == 0.5
    assert cfg.val_evaluator == dict(type='FomoMetric', tolerance_px=5.333)


def test_pareto_front_keeps_the_undominated():
    rows = [dict(trial=0, state='complete', value=0.7, arena=200, macs=5),
            dict(trial=1, state='complete', value=0.8, arena=300, macs=9),
            dict(trial=2, state='complete', value=0.6, arena=250, macs=4),  # worse and bigger than trial 0
            dict(trial=3, state='pruned', value=None, arena=100, macs=1),   # never trained
            dict(trial=4, state='complete', value=0.7, arena=150, macs=3)]  # as good as 0, smaller
    assert [r['trial'] for r in pareto_front(rows, 'maximize')] == [4, 1]
    assert [r['trial'] for r in pareto_front(rows, 'minimize')] == [4, 2]  # by arena


def tune(*args):
    proc = subprocess.run([sys.executable, osp.join('tools', 'tune.py'), *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_search_within_a_board_resumes_and_writes_a_config(roboflow_root, tmp_path):
    work = tmp_path / 'tune'
    common = ['fomo_mobnetv2', '--cfg-options', f'data_root={roboflow_root}', 'max_epochs=2', 'batch=8', 'workers=0',
              'tf_padding=False', '--budget', '5m', '--device', 'nano33_ble_sense', '--work-dir', work]
    out = tune(*common, '--trials', 3)
    board = json.load(open(work / 'leaderboard.json'))
    assert board['metric'] == 'fomo/f1' and board['device'] == 'nano33_ble_sense' and len(board['trials']) == 3
    budget = get_device('nano33_ble_sense').arena_budget_bytes
    trials = {t['trial']: t for t in board['trials']}
    # trial 0 is the config as given: with PyTorch's padding its 96x96 model needs ~238 KiB, more than the board's 192
    assert trials[0]['overrides']['imgsz'] == [96, 96] and trials[0]['fits'] is False
    assert trials[0]['state'] == 'pruned' and trials[0]['arena'] > budget and 'DOES NOT FIT' in trials[0]['note']
    trained = [t for t in board['trials'] if t['state'] == 'complete']
    assert trained, out
    for t in board['trials']:  # every architecture measured by the export; only the fitting ones trained
        assert t['arena'] > 0 and t['fits'] == (t['arena'] <= budget)
        assert (t['state'] == 'complete') <= t['fits'] and (t['seconds'] is not None) == t['fits']
    assert osp.getsize(work / 'pareto.png') > 1000 and 'Pareto' in open(work / 'leaderboard.md').read()
    best = trained[0]
    cfg = load_config(str(work / 'best_config.py'))
    assert tuple(cfg.imgsz) == tuple(best['overrides']['imgsz']) and cfg.max_epochs == 2  # fixed by --cfg-options
    assert cfg.base_lr == pytest.approx(best['overrides']['base_lr']) and cfg.data_root == roboflow_root
    assert cfg.train_cfg.max_epochs == cfg.max_epochs  # derived fields follow (a config training takes)
    assert "sscma::fomo/fomo_mobnetv2.py" in open(work / 'best_config.py').read()
    # judged within trial 0's 8 px cell at 96x96, scaled with the winner's input (train / test say the same)
    assert cfg.val_evaluator.type == 'FomoMetric' and cfg.val_evaluator.tolerance_px == pytest.approx(
        8 * cfg.imgsz[0] / 96, abs=1e-3) == best['overrides']['test_evaluator.tolerance_px']

    out = tune(*common, '--trials', 4)  # started again: the 3 trials are kept, one more is run
    assert '3 trials already in' in out
    assert len(json.load(open(work / 'leaderboard.json'))['trials']) == 4


def test_trial_zero_is_the_config_as_it_is_and_options_stay_fixed(tmp_path, roboflow_root):
    """Without training: an off-list width and a size that is no multiple of 32 come back unchanged in trial 0,
    `epochs=` (an alias) fixes max_epochs, a lower-is-better --metric is minimised, and a resumed search does not
    replay the proposals it already made."""
    from sscma.apis.tune import Tuner
    mine = tmp_path / 'mine.py'
    mine.write_text("_base_ = ['sscma::fomo/fomo_mobnetv2.py']\nwiden_factor = 0.375\nimgsz = (112, 80)\n"
                    "init = 'scratch'\n")  # no packaged ImageNet features at 0.375: loading says so without it
    options = dict(data_root=roboflow_root, epochs=2)
    tuner = Tuner(str(mine), options, str(tmp_path / 'a'), log=lambda *a: None)
    assert tuner.options['max_epochs'] == 2 and 'max_epochs' not in tuner.defaults and tuner.direction == 'maximize'
    first = tuner.study.ask()
    judged = {'val_evaluator.tolerance_px': 8.0, 'test_evaluator.tolerance_px': 8.0}  # trial 0's 8 px cell
    assert tuner.propose(first) == dict(base_lr=0.003, imgsz=(112, 80), widen_factor=0.375, mosaic=0.0,
                                        stages=(2, ), **judged)
    tuner.study.tell(first, 0.5)
    second = tuner.study.ask()
    proposed = tuner.propose(second)
    tuner.study.tell(second, 0.4)
    again = Tuner(str(mine), options, str(tmp_path / 'a'), log=lambda *a: None)  # started again
    assert len(again.study.trials) == 2 and again.propose(again.study.ask()) != proposed
    import optuna
    fomo = Tuner('fomo/fomo_mobnetv2', options, str(tmp_path / 'd'), log=lambda *a: None)  # init='imagenet'
    params = dict(base_lr=0.003, imgsz_scale=1.0, mosaic=0.0, stages='2')
    assert fomo.propose(optuna.trial.FixedTrial(dict(params, widen_factor=0.5)))['init'] == 'scratch'
    assert 'init' not in fomo.propose(optuna.trial.FixedTrial(dict(params, widen_factor=0.35)))
    coarse = fomo.propose(optuna.trial.FixedTrial(dict(params, widen_factor=0.35, stages='3')))
    assert coarse['stages'] == (3, ) and coarse['val_evaluator.tolerance_px'] == 8.0  # judged as trial 0, not 16
    larger = fomo.propose(optuna.trial.FixedTrial(dict(params, widen_factor=0.35, stages='3', imgsz_scale=1.5)))
    assert larger['imgsz'] == (128, 128) and larger['test_evaluator.tolerance_px'] == 10.667  # the same share
    cfg = load_config('fomo/fomo_mobnetv2', {**options, **larger})
    assert cfg.val_evaluator.tolerance_px == cfg.test_evaluator.tolerance_px == 10.667
    given = Tuner('fomo/fomo_mobnetv2', dict(options, **{'val_evaluator.tolerance_px': 4}), str(tmp_path / 'g'),
                  log=lambda *a: None)
    assert given.judged is None and 'test_evaluator.tolerance_px' not in given.propose(given.study.ask())
    odd = Tuner('fomo/fomo_mobnetv2', dict(options, imgsz=(160, 120)), str(tmp_path / 'f'), log=lambda *a: None)
    assert 'stages' not in odd.defaults  # 120 px leave no whole 16 px cells: FOMO's cut stays at stride 8
    boxes = Tuner('rtmdet/rtmdet_mnv2_small_data', options, str(tmp_path / 'e'), log=lambda *a: None)
    # trial 0: the levels auto_stages picks for 14 px objects in 112x84 files (13.9 px at 96x96): 4/8/16
    assert boxes.propose(boxes.study.ask())['stages'] == (1, 2, 4)
    coarse = boxes.propose(optuna.trial.FixedTrial(dict(params, widen_factor=0.35, base_lr=0.004, stages='2,4,6')))
    assert coarse['stages'] == (2, 4, 6) and 'neck_channels' not in coarse  # the config's 64 channels
    assert boxes.judged is None and not set(coarse) & set(judged)  # mAP: no tolerance to hold
    by_loss = Tuner(str(mine), options, str(tmp_path / 'c'), metric='val_loss', log=lambda *a: None)
    assert by_loss.direction == 'minimize'
    with pytest.raises(ConfigError, match='another --work-dir'):
        Tuner(str(mine), options, str(tmp_path / 'a'), metric='val_loss', log=lambda *a: None)


def test_hyperband_compares_trials_from_a_sixth_of_the_schedule():
    from types import SimpleNamespace

    from sscma.apis.tune import first_rung
    cfg = lambda interval: SimpleNamespace(train_cfg=dict(val_interval=interval))  # noqa: E731
    assert first_rung(cfg(1), 60) == 10 and first_rung(cfg(1), 4) == 1 and first_rung(cfg(5), 12) == 5
