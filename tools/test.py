"""Evaluate a checkpoint: ``python tools/test.py CONFIG CHECKPOINT [--work-dir DIR]``.

CHECKPOINT may also be a model exported by ``tools/export.py`` (``.onnx`` or TorchScript ``.pt``); it is then
run with onnxruntime / torch.jit behind the config's own test pipeline, post-processing and metric.
"""
import argparse
import os

import sscma  # noqa: F401
from sscma.utils import CfgOptionsAction, no_partial_output, run_cli


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Evaluate a trained model on the config\'s test split')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint (.pth) or exported model (.onnx, TorchScript .pt) to evaluate')
    parser.add_argument('--work-dir', help='where results.json goes (default: work_dirs/<config name>)')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, default={}, help='override settings')
    parser.add_argument('--out', help='also write every image\'s predictions to this .json file')
    parser.add_argument('--launcher', choices=['none', 'pytorch'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main() -> None:
    args = parse_args()
    from mmengine.runner import Runner

    from sscma.apis import check_checkpoint_fits, prepare_test_config
    cfg = prepare_test_config(args.config, args.checkpoint, args.work_dir, args.cfg_options, args.launcher,
                              args.out)
    with no_partial_output(cfg.work_dir):
        runner = Runner.from_cfg(cfg)
        if cfg.model.get('type') == 'BackendModel':  # an exported file: recorded in results.json, not loaded
            runner.cfg.load_from = args.checkpoint
        else:
            check_checkpoint_fits(runner.model, args.checkpoint, args.config)
        runner.test()


if __name__ == '__main__':
    run_cli(main)
