"""``sscma tune`` / ``tools/tune.py``: hyperparameter search with Optuna, each trial a real training run.

Writes ``WORK_DIR/leaderboard.md`` / ``.json`` (every trial: metric, estimated int8 arena and flash, MACs, time,
the Pareto front), ``pareto.png`` (metric against arena, marker area MACs), ``best_config.py`` (for ``sscma
train``) and ``tune.db`` (the study: start the same command again to go on after a kill). Logic:
``sscma/apis/tune.py``.
"""
import argparse

from sscma.utils import CfgOptionsAction

DESCRIPTION = 'Search hyperparameters (Optuna TPE + Hyperband), optionally within a board\'s limits'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('config', help='training config (a file or a packaged name), e.g. fomo_mobnetv2')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, default={},
                        help='fixed settings of every trial, e.g. data_root=/data num_classes=3 (a searched variable '
                        'given here, e.g. imgsz=(96,96), is fixed and not searched)')
    parser.add_argument('--budget', default='10m', help='wall time for the search: 600s, 10m, 1.5h (default 10m); '
                        'a trial still running when it is spent stops at its next validation')
    parser.add_argument('--trials', type=int, default=50, help='trials in the study at most (default 50; those of '
                        'an earlier run in the same --work-dir count)')
    parser.add_argument('--device', help='train only configurations whose int8 model fits this board (`sscma export '
                        '--device list`): each architecture is exported to int8 TFLM first and its arena measured')
    parser.add_argument('--metric', help='validation metric to optimise (default: the config\'s best-checkpoint '
                        'metric)')
    parser.add_argument('--direction', choices=('maximize', 'minimize'),
                        help='whether higher --metric is better (default: the config\'s rule for its own metric; '
                        'minimize for losses and errors, else maximize)')
    parser.add_argument('--work-dir', help='output folder (default: work_dirs/<config name>_tune)')
    parser.add_argument('--seed', type=int, default=0, help='sampler seed (default 0)')


def main(args: argparse.Namespace) -> None:
    import os
    import os.path as osp

    from sscma.apis.tune import Tuner, parse_budget
    from sscma.apis.tune_report import write_best_config, write_leaderboard
    from sscma.utils import ConfigError
    budget = parse_budget(args.budget)
    if args.trials < 1:
        raise ConfigError(f'--trials {args.trials}: expected at least 1')
    name = osp.splitext(osp.basename(args.config))[0]
    work_dir = args.work_dir or osp.join('work_dirs', f'{name}_tune')
    os.makedirs(work_dir, exist_ok=True)
    tuner = Tuner(args.config, args.cfg_options, work_dir, device=args.device, metric=args.metric, seed=args.seed,
                  direction=args.direction)
    rows = tuner.run(args.trials, budget)
    metric = tuner.study.user_attrs.get('metric') or tuner.metric or 'metric'
    paths = write_leaderboard(rows, metric, tuner.direction, work_dir, args.device)
    trained = [r for r in rows if r['state'] == 'complete']
    print(f'leaderboard: {paths["markdown"]} ({len(rows)} trials, {len(trained)} trained to the end); '
          f'plot: {paths["png"]}')
    if not trained:
        print('no trial finished its schedule: give a larger --budget')
        return
    best = trained[0]
    default = next((r for r in rows if r['trial'] == 0), None)
    versus = (f' (the config as it is, trial 0: {default["value"]:.4f})'
              if default and default['value'] is not None else '')
    config = write_best_config(tuner.config, tuner.options, best['overrides'], osp.join(work_dir, 'best_config.py'),
                               f'sscma tune: trial {best["trial"]}, {metric} {best["value"]:.4f}{versus}')
    print(f'best: trial {best["trial"]}, {metric} {best["value"]:.4f}{versus}; {best["overrides"]}')
    print(f'config: {config}  ->  sscma train {config}')
    if args.device:
        print(f'{args.device}: int8 TFLM arena {best["arena"]:,} bytes, flatbuffer {best["flash"]:,} bytes, measured '
              f'by exporting this architecture (`sscma export --device {args.device}` gives the same)')
