"""``sscma lr-find`` / ``tools/analysis/lr_finder.py``: learning-rate range test.

Trains the config's model for ``--num-iters`` steps with an exponentially growing lr, stops when the loss
diverges, prints the suggested lr (steepest descent of the centred smoothing of the loss) and writes
``lr_finder.png`` and ``lr_finder.json`` to ``--out`` (default ``work_dirs/<config name>``). No checkpoint is
written.
"""
import argparse

from sscma.utils import CfgOptionsAction

DESCRIPTION = 'Find a learning rate with an lr range test'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('config', help='training config (a file or a packaged name), e.g. fomo_mobnetv2')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, default={},
                        help='override settings, e.g. data_root=/data batch=32')
    parser.add_argument('--min-lr', type=float, default=1e-6, help='first lr (default: 1e-6)')
    parser.add_argument('--max-lr', type=float, default=100.0,
                        help='last lr; the sweep stops earlier once the loss diverges (default: 100)')
    parser.add_argument('--num-iters', type=int, default=100, help='steps of the sweep (default: 100)')
    parser.add_argument('--out', help='folder for lr_finder.png/.json (default: work_dirs/<config name>)')


def main(args: argparse.Namespace) -> None:
    import os.path as osp

    from sscma.apis import resolve_teacher
    from sscma.engine.lr_finder import find_lr, save_lr_finder
    from sscma.utils import load_config, register_all_modules
    register_all_modules()
    cfg = load_config(args.config, args.cfg_options)
    cfg.model = resolve_teacher(cfg.model)
    result = find_lr(cfg, args.min_lr, args.max_lr, args.num_iters)
    out = args.out or osp.join('work_dirs', osp.splitext(osp.basename(args.config))[0])
    files = save_lr_finder(result, out, extra=dict(config=args.config, cfg_options=args.cfg_options))
    print(f'{len(result.lrs)} steps from lr {result.min_lr:.1e} to {result.lrs[-1]:.1e} ({result.stop_reason})')
    print(f'lowest smoothed loss {min(result.centred):.4f} at lr {result.min_loss_lr:.2e}')
    print(f'suggested lr: {result.suggested_lr:.2e} (steepest descent); min loss / 10: '
          f'{result.min_loss_lr_div10:.2e}')
    if result.warning:
        print(f'warning: {result.warning}')
    print(f'plot: {files["png"]}  data: {files["json"]}')
    print(f'use it: --cfg-options base_lr={result.suggested_lr:.2e}')
