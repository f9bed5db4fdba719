"""Structured channel pruning + fine-tuning of a trained model.

    python tools/prune.py CONFIG CHECKPOINT (--ratio R | --target-macs M) [--finetune-epochs N] [--iterative K]
                          [--work-dir DIR] [--cfg-options k=v ...]

Writes ``DIR/<config name>_pruned.py`` (the config of the pruned model: the original + its pruned widths), the
fine-tuned checkpoints and ``prune_report.md`` (float vs pruned: params, MACs, latency, test metrics). Test,
export or resume the result with that config like any other run. Logic: ``sscma/apis/prune.py``.
"""
import argparse

import sscma  # noqa: F401  (sets up protobuf for ppq before anything imports it)
from sscma.utils import CfgOptionsAction, run_cli


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Prune a trained model (torch-pruning) and fine-tune it')
    parser.add_argument('config', help='the config the checkpoint was trained with')
    parser.add_argument('checkpoint', help='trained checkpoint (.pth)')
    amount = parser.add_mutually_exclusive_group(required=True)
    amount.add_argument('--ratio', type=float, help='fraction of each prunable group\'s channels to remove, e.g. 0.5')
    amount.add_argument('--target-macs', type=float,
                        help='at most this fraction of the float MACs (<= 1, e.g. 0.6) or this many MACs (> 1, e.g. 5e6)')
    parser.add_argument('--finetune-epochs', type=int, default=10,
                        help='epochs of the config\'s own training after each pruning step (default 10; 0: none)')
    parser.add_argument('--iterative', type=int, default=1,
                        help='prune in K steps with fine-tuning between them (default 1: one shot)')
    parser.add_argument('--work-dir', help='output folder (default: work_dirs/<config name>_pruned)')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, default={},
                        help='overrides of the config, e.g. data_root=/data workers=0; written into the pruned config')
    parser.add_argument('--no-eval', action='store_true', help='do not test the float and pruned models')
    parser.add_argument('--latency-runs', type=int, default=30, help='timed forward passes per model (0: none)')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    from sscma.apis.prune import prune
    from sscma.apis.prune_report import summary_lines
    report = prune(args.config, args.checkpoint, ratio=args.ratio, target_macs=args.target_macs,
                   finetune_epochs=args.finetune_epochs, iterative=args.iterative, work_dir=args.work_dir,
                   cfg_options=args.cfg_options, evaluate=not args.no_eval, latency_runs=args.latency_runs)
    for line in summary_lines(report):
        print(line)


if __name__ == '__main__':
    run_cli(main)
