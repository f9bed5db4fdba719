"""``sscma train`` / ``tools/train.py``: train a model from a config (a file or a packaged name), or go on from a
checkpoint alone (``--resume PATH`` / ``--load-from PATH``: its saved config)."""
import argparse
import os

from sscma.utils import CfgOptionsAction

DESCRIPTION = 'Train a model'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('config', nargs='?', help='config file or packaged config name (`sscma configs`), e.g. '
                        'fomo_mobnetv2; with --resume PATH or --load-from PATH it may be left out: the checkpoint '
                        'carries its config')
    parser.add_argument('--work-dir', help='where logs and checkpoints go (default: work_dirs/<config name>)')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, default={},
                        help='override settings, e.g. max_epochs=2 base_lr=0.01 data_root=/data imgsz="(160,160)"; '
                        'top-level variables update every field derived from them')
    parser.add_argument('--resume', nargs='?', const='auto', default=None,
                        help='resume from PATH, or from the work dir\'s last checkpoint when no PATH is given')
    parser.add_argument('--load-from', help='initialise from this checkpoint (transfer learning / fine-tuning)')
    parser.add_argument('--qat', action='store_true',
                        help='quantisation-aware fine-tuning of the --load-from checkpoint (int8 simulated); export '
                        'the result with tools/export.py as usual')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision: fp16 with dynamic loss scaling on a GPU, bfloat16 on a CPU that '
                        'computes it natively (AVX512-BF16 or AMX)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale lr by the real total batch size (batch x processes) over '
                        'auto_scale_lr.base_batch_size')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='"pytorch" under torchrun (DDP, CPU or GPU, one or several machines); "slurm" / "mpi": '
                        'GPUs only (docs/distributed.md)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0, help=argparse.SUPPRESS)


def main(args: argparse.Namespace) -> None:
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    from sscma.apis.distributed import process_group_teardown
    from sscma.apis.runner import train_model
    from sscma.utils import ConfigError
    config, options = args.config, args.cfg_options
    if config is None:
        model = args.resume if args.resume not in (None, 'auto') else args.load_from
        if model is None:
            raise ConfigError('give a CONFIG (a file or a packaged name, see `sscma configs`), or a checkpoint with '
                              '--resume PATH / --load-from PATH whose saved config is used')
        from sscma.apis.model_config import resolve_model_config
        config, options = resolve_model_config(None, model, options)
    with process_group_teardown():
        train_model(config, args.work_dir, options, resume=args.resume, amp=args.amp,
                    auto_scale_lr=args.auto_scale_lr, launcher=args.launcher, load_from=args.load_from, qat=args.qat)
