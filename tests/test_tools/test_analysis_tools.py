"""tools/analysis/plot_curves.py (run in-process, as ``python tools/analysis/plot_curves.py`` would)."""
import json
import os
import os.path as osp
import runpy
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PLOT_CURVES = osp.join(REPO, 'tools', 'analysis', 'plot_curves.py')


def run_tool(monkeypatch, *args):
    monkeypatch.setattr(sys, 'argv', ['plot_curves.py', *args])
    runpy.run_path(PLOT_CURVES, run_name='__main__')


def write_scalars(path, epochs=3, loss0=1.0):
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        for e in range(1, epochs + 1):
            for it in range(1, 4):
                step = (e - 1) * 3 + it
                f.write(json.dumps(dict(lr=0.001 * step, loss=loss0 / step, loss_cls=loss0 / step, epoch=e,
                                        iter=step, step=step, time=0.1)) + '\n')
            f.write(json.dumps({'fomo/f1': 0.2 * e, 'fomo/tp': 10 * e, 'step': e}) + '\n')


def test_newest_run_of_a_work_dir_is_plotted(tmp_path, monkeypatch, capsys):
    work = tmp_path / 'work'
    old = work / '20250101_000000' / 'vis_data' / 'scalars.json'
    new = work / '20250102_000000' / 'vis_data' / 'scalars.json'
    write_scalars(str(old))
    write_scalars(str(new), loss0=2.0)
    os.utime(old, (1_000_000, 1_000_000))
    run_tool(monkeypatch, str(work))
    assert capsys.readouterr().out.strip() == f'{new} -> {work / "training_curves.png"}'
    assert osp.getsize(work / 'training_curves.png') > 5000

    out = tmp_path / 'figs' / 'curves.png'
    run_tool(monkeypatch, str(old), '--out', str(out))
    assert osp.getsize(out) > 5000


@pytest.mark.parametrize('setup, message', [
    ('missing', r'^error: .*nothing does not exist'),
    ('empty', r'^error: no training log in .*empty: expected .*/<timestamp>/vis_data/scalars.json'),
    ('no_values', r'^error: .*scalars.json holds no loss or validation metric to plot'),
])
def test_clear_error_without_a_log(setup, message, tmp_path, monkeypatch):
    path = tmp_path / setup
    if setup == 'missing':
        path = tmp_path / 'nothing'
    elif setup == 'empty':
        (path / '20250101_000000').mkdir(parents=True)
    else:
        scalars = path / '20250101_000000' / 'vis_data' / 'scalars.json'
        scalars.parent.mkdir(parents=True)
        scalars.write_text(json.dumps(dict(time=0.1, step=1)) + '\n')
    with pytest.raises(SystemExit, match=message):
        run_tool(monkeypatch, str(path))
    assert not osp.exists(tmp_path / setup / 'training_curves.png')
