"""``sscma prune`` / ``tools/prune.py``: structured channel pruning + fine-tuning of a trained model.

Writes ``DIR/config/<config name>_pruned.py`` (the config of the pruned model: the original + its pruned
widths), the fine-tuned checkpoints (each carrying that config: ``sscma test DIR/best_*.pth`` needs nothing else)
and ``prune_report.md`` (float vs pruned: params, MACs, latency, test metrics). Logic: ``sscma/apis/prune.py``.
"""
import argparse

from sscma.utils import CfgOptionsAction

from . import add_model_arguments, model_and_config

DESCRIPTION = 'Prune a trained model (torch-pruning) and fine-tune it'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser, 'trained checkpoint (.pth)')
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


def main(args: argparse.Namespace) -> None:
    from sscma.apis.prune import prune
    from sscma.apis.prune_report import summary_lines
    config, checkpoint, options = model_and_config(args)
    report = prune(config, checkpoint, ratio=args.ratio, target_macs=args.target_macs,
                   finetune_epochs=args.finetune_epochs, iterative=args.iterative, work_dir=args.work_dir,
                   cfg_options=options, evaluate=not args.no_eval, latency_runs=args.latency_runs)
    for line in summary_lines(report):
        print(line)
