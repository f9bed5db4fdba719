"""Configs by name from any folder, and model files that are enough on their own (their config inside)."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from sscma.utils import ConfigError, load_config
from sscma.utils.packaged_configs import find_config, packaged_configs
from tests.test_deploy.test_export import REPO, fomo_opts


def sscma(*args, cwd, env=None, check=True):
    """``sscma ARGS`` (``python -m sscma.cli``) run from ``cwd``, as a user outside the repository runs it."""
    proc = subprocess.run([sys.executable, '-m', 'sscma.cli', *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f'sscma {args} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}')
    return proc


def test_configs_by_name_and_as_bases(tmp_path):
    assert 'fomo/fomo_mobnetv2' in packaged_configs() and not any('_base_' in n for n in packaged_configs())
    assert find_config('fomo_mobnetv2') == find_config('fomo/fomo_mobnetv2') == find_config('sscma::fomo/fomo_mobnetv2.py')
    with pytest.raises(ConfigError, match='did you mean fomo_mobnetv2'):
        find_config('fomo_mobnet')
    mine = tmp_path / 'mine.py'
    mine.write_text("_base_ = ['sscma::fomo/fomo_mobnetv2_small_data.py']\nimgsz = (128, 96)\n")
    cfg = load_config(str(mine), dict(data_root='/data/x'))
    assert cfg.train_dataloader.dataset.data_root == '/data/x'  # variables still reach the derived fields
    assert cfg.test_dataloader.dataset.pipeline[1]['scale'] == (128, 96)


@pytest.fixture(scope='module')
def trained(roboflow_root, tmp_path_factory):
    """``sscma train fomo_mobnetv2`` by name, from a folder outside the repository."""
    work = tmp_path_factory.mktemp('outside')
    sscma('train', 'fomo_mobnetv2', '--work-dir', work / 'run', '--cfg-options', *fomo_opts(roboflow_root), 'epochs=1',
          cwd=work)
    return work, str(work / 'run' / 'epoch_1.pth')


def test_checkpoint_alone_is_tested_exported_and_run(trained, roboflow_root):
    work, ckpt = trained
    meta = torch.load(ckpt, map_location='cpu')['meta']
    assert meta['config_source']['options']['data_root'] == roboflow_root
    sscma('test', ckpt, '--work-dir', work / 'test', cwd=work)
    tested = json.load(open(work / 'test' / 'results.json'))['test']
    assert tested['fomo/tp'] + tested['fomo/fn'] == 6  # the training's data_root came with the checkpoint
    sscma('export', ckpt, '--targets', 'onnx', '--precisions', 'float32', '--latency-runs', '1', '--work-dir',
          work / 'export', cwd=work)
    onnx = str(work / 'export' / 'epoch_1_float32.onnx')
    sscma('test', onnx, '--work-dir', work / 'test_onnx', cwd=work)
    assert json.load(open(work / 'test_onnx' / 'results.json'))['test'] == tested
    sscma('predict', onnx, osp.join(roboflow_root, 'test'), '--out', work / 'predict', cwd=work)
    assert len(json.load(open(work / 'predict' / 'predictions.json'))['predictions']) == 4


def test_config_beside_a_checkpoint_is_checked(trained, roboflow_root):
    work, ckpt = trained
    proc = sscma('test', 'fomo_mobnetv2', ckpt, '--cfg-options', f'data_root={roboflow_root}', cwd=work, check=False)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 1 and 'does not describe the model in' in last
    assert 'model.backbone.widen_factor: 0.35 in the config, 0.1 in the model' in last
    sscma('test', 'fomo_mobnetv2', ckpt, '--work-dir', work / 'same', '--cfg-options', *fomo_opts(roboflow_root),
          cwd=work)  # the same options: accepted


def test_wheel_carries_the_configs(tmp_path, roboflow_root):
    """A wheel built from the repository holds the configs and the distilled weights: from outside the repository,
    with the wheel's package first on the path, `sscma configs` lists them, a config loads by name, and `sscma
    train <name>`, `test CKPT`, `export CKPT` and `predict CKPT SOURCE` run from the wheel's files."""
    wheels = tmp_path / 'wheel'
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', REPO, '--no-deps', '--no-build-isolation', '-q', '-w',
                    str(wheels)], check=True, capture_output=True, timeout=600)
    target = tmp_path / 'site'
    subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-deps', '-q', '--target', str(target),
                    glob.glob(str(wheels / '*.whl'))[0]], check=True, capture_output=True, timeout=600)
    assert not osp.islink(target / 'sscma' / '.mim' / 'configs')  # copies, not a link back into the repository
    assert sorted(p.name for p in (target / 'sscma' / 'models' / 'weights').glob('*.pth')) == [
        'mobilenet_v2_0.1_distilled.pth', 'mobilenet_v2_0.35_distilled.pth']  # FOMO's default start, offline
    env = dict(os.environ, PYTHONPATH=str(target))
    out = sscma('configs', 'fomo', cwd=tmp_path, env=env).stdout
    assert 'fomo/fomo_mobnetv2_small_data' in out and 'rtmdet' not in out
    code = 'import sscma.utils.packaged_configs as c; print(c.find_config("rtmdet_nano_96"))'
    printed = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, env=env, capture_output=True, text=True,
                             check=True).stdout
    assert printed.startswith(str(target))
    work = tmp_path / 'outside'
    work.mkdir()
    sscma('train', 'fomo_mobnetv2', '--work-dir', work / 'run', '--cfg-options', *fomo_opts(roboflow_root), 'epochs=1',
          cwd=work, env=env)
    used = json.load(open(work / 'run' / 'results.json'))['config']
    assert used == str(target / 'sscma' / '.mim' / 'configs' / 'fomo' / 'fomo_mobnetv2.py')  # the wheel's config
    ckpt = work / 'run' / 'epoch_1.pth'
    sscma('test', ckpt, '--work-dir', work / 'test', cwd=work, env=env)
    assert 'fomo/f1' in json.load(open(work / 'test' / 'results.json'))['test']
    sscma('export', ckpt, '--targets', 'onnx', '--precisions', 'float32', '--latency-runs', '0', '--no-eval',
          '--work-dir', work / 'export', cwd=work, env=env)
    sscma('predict', ckpt, osp.join(roboflow_root, 'test'), '--out', work / 'predict', cwd=work, env=env)
    assert len(json.load(open(work / 'predict' / 'predictions.json'))['predictions']) == 4
    assert osp.isfile(work / 'export' / 'epoch_1_float32.onnx')


def test_resume_from_the_checkpoint_alone(trained):
    work, ckpt = trained
    run = work / 'resumed'
    sscma('train', '--resume', ckpt, '--work-dir', run, '--cfg-options', 'epochs=2', cwd=work)
    assert torch.load(run / 'epoch_2.pth', map_location='cpu')['meta']['epoch'] == 2


def test_readme_python_api_example_runs(tmp_path, monkeypatch):
    """The README's notebook example, as written, on a folder of photos (the bundled test images) from a folder
    outside the repository."""
    import re
    import shutil

    from sscma.datasets import ensure_fomo_coco
    readme = open(osp.join(REPO, 'README.md'), encoding='utf-8').read()
    code = re.search(r'```python\n(import sscma\n.*?)```', readme, re.S).group(1)
    photos = tmp_path / 'my_photos'
    shutil.copytree(osp.join(str(ensure_fomo_coco()), 'test'), photos, ignore=shutil.ignore_patterns('*.json'))
    monkeypatch.chdir(tmp_path)
    scope = {}
    exec(compile(code, 'README.md', 'exec'), scope)
    m, report, records = scope['m'], scope['report'], scope['records']
    assert osp.isfile(m.checkpoint) and 'fomo/f1' in scope['results']['val']
    assert [e['target'] for e in report['exports']] == ['tflite', 'tflm'] and not report['failed']
    assert report['exports'][1]['tflm']['devices'][0]['device'] == 'xiao_esp32s3'
    assert len(records) == len(os.listdir(photos)) and all('centroids' in r for r in records)
    assert scope['same'].config.endswith('fomo_mobnetv2.py') and scope['same'].checkpoint == m.checkpoint
