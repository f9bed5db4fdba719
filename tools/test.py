"""Evaluate a checkpoint: ``python tools/test.py CONFIG CHECKPOINT [--work-dir DIR]``."""
import argparse
import os

from mmengine.config import DictAction

import sscma  # noqa: F401
from sscma.utils import run_cli


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Evaluate a trained model on the config\'s test split')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint (.pth) to evaluate')
    parser.add_argument('--work-dir', help='where results.json goes (default: work_dirs/<config name>)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={}, help='override settings')
    parser.add_argument('--launcher', choices=['none', 'pytorch'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main() -> None:
    args = parse_args()
    from mmengine.runner import Runner

    from sscma.apis import prepare_test_config
    cfg = prepare_test_config(args.config, args.checkpoint, args.work_dir, args.cfg_options, args.launcher)
    Runner.from_cfg(cfg).test()


if __name__ == '__main__':
    run_cli(main)
