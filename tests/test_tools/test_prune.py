"""tools/prune.py: structured pruning of FOMO / classifier / PFLD, the pruned config rebuilds the model, the
checkpoint goes through tools/test.py and --resume, bad arguments stop in one line."""
import copy
import json
import os
import os.path as osp
import runpy
import subprocess
import sys

import pytest
import torch
from mmengine.visualization import Visualizer

from sscma.apis.prune import (backbone_channels, check_prune_args, count_macs_params, input_shape_of,
                              prune, prune_once, write_pruned_config)
from sscma.deploy.measures import build_model
from sscma.registry import MODELS
from sscma.utils import ConfigError, load_config, register_all_modules
from tests.conftest import write_class_folders

pytest.importorskip('torch_pruning')

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FOMO = osp.join(REPO, 'configs', 'fomo', 'fomo_mobnetv2.py')
CLS = osp.join(REPO, 'configs', 'classification', 'mobilenetv2_0.35_digits.py')
PFLD = osp.join(REPO, 'configs', 'pfld', 'pfld_mobilenetv2_meter_112.py')
RTMDET = osp.join(REPO, 'configs', 'rtmdet', 'rtmdet_nano_96.py')


def run_tool(tool, *args, check=True):
    proc = subprocess.run([sys.executable, osp.join('tools', tool), *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f'{tool} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}')
    return proc


def widths(channels):
    return [c for e in channels for c in (e if isinstance(e, list) else [e])]


def random_checkpoint(config, options, path):
    """A checkpoint of the config's model with random weights (pruning does not need a trained one)."""
    register_all_modules()
    model = MODELS.build(load_config(config, options).model)
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)
    return str(path)


@pytest.mark.parametrize('config, options', [
    (FOMO, {}), (CLS, {}), (PFLD, dict(pretrained=False)), (FOMO, dict(widen_factor=0.1))])
def test_pruned_widths_are_multiples_of_8_and_outputs_keep_their_shape(config, options):
    cfg = load_config(config, options)
    shape = input_shape_of(cfg, config)
    model = MODELS.build(cfg.model).eval()
    x = torch.rand(2, *shape)
    before, ref = backbone_channels(model.backbone), model(x).shape
    macs = count_macs_params(model, shape)[0]
    prune_once(model, shape, 0.5)
    after = backbone_channels(model.backbone)
    assert model(x).shape == ref
    assert all(w % 8 == 0 for w in widths(after))
    assert all(a <= b for a, b in zip(widths(after), widths(before)))
    assert sum(widths(after)) < sum(widths(before)) or options.get('widen_factor') == 0.1  # 0.1: all 8 already
    assert count_macs_params(model, shape)[0] <= macs
    # the widths as config data rebuild the same network: the pruned state dict loads strictly
    rebuilt = MODELS.build(dict(copy.deepcopy(cfg.model.backbone), channels=after))
    rebuilt.load_state_dict(model.backbone.state_dict(), strict=True)


def test_written_config_rebuilds_the_pruned_model(tmp_path):
    cfg = load_config(CLS)
    shape = input_shape_of(cfg, CLS)
    model = MODELS.build(cfg.model).eval()
    prune_once(model, shape, 0.3)
    channels = backbone_channels(model.backbone)
    path = write_pruned_config(str(tmp_path / 'cls_pruned.py'), CLS, dict(num_classes=10), channels,
                               channels[-1], 3, 'test')
    pruned_cfg = load_config(path, dict(workers=0))
    assert pruned_cfg.model.backbone.channels == channels and pruned_cfg.model.head.in_channels == channels[-1]
    assert pruned_cfg.train_cfg.max_epochs == 3  # the fine-tuning length, derived fields follow
    assert cfg.model.backbone.init_cfg and pruned_cfg.model.backbone.init_cfg is None  # weights: the checkpoint
    rebuilt = MODELS.build(pruned_cfg.model)
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    x = torch.rand(1, *shape)
    assert torch.allclose(rebuilt.eval()(x), model(x), atol=1e-6)


@pytest.fixture(scope='module')
def fomo_pruned(roboflow_root, tmp_path_factory):
    root = tmp_path_factory.mktemp('prune_fomo')
    opts = [f'data_root={roboflow_root}', 'imgsz=(64,64)', 'workers=0', 'batch=4']
    ckpt = random_checkpoint(FOMO, {}, root / 'fomo.pth')
    work = root / 'pruned'
    proc = run_tool('prune.py', FOMO, ckpt, '--ratio', '0.5', '--finetune-epochs', '1', '--work-dir', work,
                    '--latency-runs', '3', '--cfg-options', *opts)
    return dict(work=str(work), ckpt=ckpt, opts=opts, stdout=proc.stdout)


def test_fomo_prune_writes_config_checkpoint_and_report(fomo_pruned):
    work = fomo_pruned['work']
    report = json.load(open(osp.join(work, 'prune_report.json')))
    assert report['pruned']['macs'] < 0.6 * report['float']['macs']
    assert report['pruned']['params'] < report['float']['params']
    assert all(w % 8 == 0 for w in widths(report['pruned']['channels']))
    assert 'fomo/f1' in report['float']['metrics'] and 'fomo/f1' in report['pruned']['metrics']
    text = open(osp.join(work, 'prune_report.md')).read()
    assert '| float |' in text and '| pruned + fine-tuned |' in text and 'MACs vs float' in text
    assert 'pruned:' in fomo_pruned['stdout'] and 'fomo_mobnetv2_pruned.py' in fomo_pruned['stdout']
    # the checkpoint is an ordinary mmengine checkpoint: loads with weights_only=True, no pickled module
    ckpt = torch.load(report['pruned']['checkpoint'], map_location='cpu', weights_only=True)
    assert ckpt['state_dict']['backbone.features.0.0.weight'].shape[0] == report['pruned']['channels'][0]


def test_pruned_checkpoint_through_test_tool_and_resume(fomo_pruned):
    work = fomo_pruned['work']
    report = json.load(open(osp.join(work, 'prune_report.json')))
    config, ckpt = report['pruned']['config'], report['pruned']['checkpoint']
    run_tool('test.py', config, ckpt, '--work-dir', work)  # the overrides were written into the config
    results = json.load(open(osp.join(work, 'results.json')))
    assert results['test']['fomo/tp'] + results['test']['fomo/fn'] == 6
    # the pruned checkpoint alone is enough: it carries the pruned architecture's config
    run_tool('test.py', ckpt, '--work-dir', osp.join(work, 'alone'))
    assert json.load(open(osp.join(work, 'alone', 'results.json')))['test'] == results['test']
    # the original config does not describe the pruned model: one line naming the first differing key
    proc = run_tool('test.py', FOMO, ckpt, '--cfg-options', *fomo_pruned['opts'], check=False)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 1 and 'does not describe the model in' in last and 'model.backbone.channels' in last
    run_tool('train.py', config, '--work-dir', work, '--resume', '--cfg-options', 'epochs=2')
    assert torch.load(osp.join(work, 'epoch_2.pth'), map_location='cpu', weights_only=True)['meta']['epoch'] == 2


def test_classifier_target_macs_iterative(tmp_path):
    data = write_class_folders(tmp_path / 'data', ['a', 'b', 'c'], per_class=4)
    options = dict(data_root=data, num_classes=3, workers=0, batch=4)
    ckpt = random_checkpoint(CLS, options, tmp_path / 'cls.pth')
    Visualizer._instance_dict.clear()
    report = prune(CLS, ckpt, target_macs=0.6, finetune_epochs=1, iterative=2, work_dir=str(tmp_path / 'work'),
                   cfg_options=options, latency_runs=0)
    assert report['pruned']['macs'] <= 0.6 * report['float']['macs']
    assert [s['step'] for s in report['steps']] == [1, 2] and osp.isdir(tmp_path / 'work' / 'step_1')
    assert report['steps'][1]['macs'] <= report['steps'][0]['macs']
    assert 'accuracy/top1' in report['pruned']['metrics']
    cfg = load_config(report['pruned']['config'])
    model = build_model(cfg, report['pruned']['checkpoint'], report['pruned']['config'])
    assert model.head.fc.out_features == 3 and model.head.fc.in_features == report['pruned']['channels'][-1]


def run_prune_cli(*args):
    argv = sys.argv
    sys.argv = ['prune.py', *map(str, args)]
    try:
        with pytest.raises(SystemExit) as exc:
            runpy.run_path(osp.join(REPO, 'tools', 'prune.py'), run_name='__main__')
    finally:
        sys.argv = argv
    return exc.value.code


@pytest.mark.parametrize('args, message', [
    (['--ratio', '1.5'], r'--ratio 1.5: expected a fraction of channels to remove in \(0, 0.9\]'),
    (['--ratio', '0'], r'--ratio 0.0: expected a fraction'),
    (['--target-macs', '-3'], r'--target-macs -3.0: expected a fraction of the float MACs'),
    (['--target-macs', '10'], r'--target-macs 10: even ratio 0.9 leaves [\d,]+ MACs'),
    (['--ratio', '0.5', '--iterative', '0'], r'--iterative 0: expected a number of pruning steps >= 1'),
    (['--ratio', '0.5', '--iterative', '2', '--finetune-epochs', '0'], r'--iterative needs --finetune-epochs >= 1'),
    (['--ratio', '0.5', '--finetune-epochs', '-1'], r'--finetune-epochs -1: expected an integer >= 0'),
])
def test_bad_arguments_give_one_line(args, message, tmp_path):
    import re
    ckpt = random_checkpoint(FOMO, {}, tmp_path / 'fomo.pth')
    code = run_prune_cli(FOMO, ckpt, '--work-dir', tmp_path / 'w', '--no-eval', '--latency-runs', '0', *args)
    assert isinstance(code, str) and len(code.splitlines()) == 1 and re.search(message, code), code


def test_unsupported_models_and_files_give_one_line(tmp_path):
    code = run_prune_cli(RTMDET, tmp_path / 'none.pth', '--ratio', '0.5')
    assert code.startswith('error: ') and 'prunes models with the sscma MobileNetV2 backbone' in code
    assert "'mmdet.CSPNeXt'" in code and len(code.splitlines()) == 1
    code = run_prune_cli(FOMO, tmp_path / 'none.pth', '--ratio', '0.5')
    assert code == f'error: checkpoint file not found: {tmp_path / "none.pth"}'
    other = random_checkpoint(FOMO, dict(num_classes=3), tmp_path / 'fomo3.pth')
    code = run_prune_cli(FOMO, other, '--ratio', '0.5', '--no-eval')
    assert code.startswith(f'error: checkpoint {other} does not match the model of') and len(code.splitlines()) == 1


def test_check_prune_args_needs_one_amount():
    with pytest.raises(ConfigError, match='exactly one of --ratio'):
        check_prune_args(None, None, 1, 1)
    with pytest.raises(ConfigError, match='exactly one of --ratio'):
        check_prune_args(0.5, 0.5, 1, 1)
    assert os.path.isfile(RTMDET)
