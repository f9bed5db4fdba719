"""The `sscma` console command: declared in setup.py, one parser per command shared with tools/*.py."""
import ast
import os.path as osp
import subprocess
import sys

import pytest

from sscma.cli import COMMANDS, build_parser, main

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = {'train': 'train.py', 'test': 'test.py', 'export': 'export.py', 'split': 'dataset_split.py',
         'transfer-learn': 'transfer_learn.py', 'predict': 'inference.py', 'configs': 'configs.py',
         'prune': 'prune.py', 'lr-find': 'analysis/lr_finder.py', 'tune': 'tune.py', 'benchmark': 'benchmark.py'}


def test_setup_declares_the_console_script():
    tree = ast.parse(open(osp.join(REPO, 'setup.py')).read())
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, 'id', '') == 'setup')
    entry_points = ast.literal_eval(next(k.value for k in call.keywords if k.arg == 'entry_points'))
    assert entry_points == {'console_scripts': ['sscma=sscma.cli:main']}


def test_train_help_from_both_spellings():
    """`python -m sscma.cli train --help` (what the console script runs) and tools/train.py --help."""
    cli = subprocess.run([sys.executable, '-m', 'sscma.cli', 'train', '--help'], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    tool = subprocess.run([sys.executable, 'tools/train.py', '--help'], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert cli.returncode == tool.returncode == 0, cli.stderr + tool.stderr
    assert cli.stdout.startswith('usage: sscma train ') and tool.stdout.startswith('usage: train.py ')
    for option in ('--launcher', '--amp', '--auto-scale-lr', '--resume', '--cfg-options'):
        assert option in cli.stdout and option in tool.stdout


@pytest.mark.parametrize('name', sorted(COMMANDS))
def test_every_tool_runs_its_command(name):
    """tools/<tool>.py is thin: it runs the command of the same table, so both take the same arguments."""
    tree = ast.parse(open(osp.join(REPO, 'tools', TOOLS[name])).read())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, 'id', '') == 'run_command']
    assert [ast.literal_eval(c.args[0]) for c in calls] == [name]
    parser = build_parser(name, prog=f'sscma {name}')
    assert parser.format_help().startswith(f'usage: sscma {name} ')
    assert parser.description


def test_benchmark_rows_compare_every_file_with_pytorch():
    from sscma.cli.benchmark import benchmark_rows
    report = dict(float_metrics={'fomo/f1': 0.8}, float_latency=dict(median_ms=1.5, runtime='torch eager (CPU)'),
                  exports=[dict(target='tflite', precision='int8', size_bytes=51200, metrics={'fomo/f1': 0.75},
                                latency=dict(median_ms=0.4, runtime='LiteRT')),
                           dict(target='vela', precision='int8', size_bytes=2048, metrics=None, latency=None)],
                  failed=[dict(target='imx500', precision='int8', error='imxconv-pt not found\nmore')])
    rows = benchmark_rows(report, 'fomo/f1')
    assert rows[0] == ['PyTorch', 'float32', '-', '0.8000', '', '1.50 ms (torch eager (CPU))']
    assert rows[1] == ['tflite', 'int8', '50.0 KiB', '0.7500', '-0.0500', '0.40 ms (LiteRT)']
    assert rows[2][3:] == ['-', '', '-']  # a file that does not run here: no metric, no latency
    assert rows[3][:3] == ['imx500', 'int8', 'failed: imxconv-pt not found']


def test_usage_lists_every_command(capsys):
    main([])
    out = capsys.readouterr().out
    assert all(f'  {name} ' in out for name in COMMANDS)


def test_predict_is_a_command_and_unknown_commands_are_named(capsys):
    assert 'predict' in COMMANDS
    with pytest.raises(SystemExit, match=r'SOURCE x\.jpg: no such file or folder'):
        main(['predict', 'configs/fomo/fomo_mobnetv2.py', 'model.pth', 'x.jpg'])
    with pytest.raises(SystemExit, match="unknown command 'trian'; commands: train, test"):
        main(['trian'])


def test_split_runs_through_the_command(tmp_path, capsys):
    from tests.conftest import write_class_folders
    src = write_class_folders(tmp_path / 'src', ['a', 'b'], per_class=10, splits=('training', ))
    main(['split', str(src), str(tmp_path / 'out'), '--ratios', '0.6', '0.2', '0.2'])
    assert '20 images from' in capsys.readouterr().out
    assert osp.isdir(tmp_path / 'out' / 'validation' / 'a')
