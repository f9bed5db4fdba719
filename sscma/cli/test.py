"""``sscma test`` / ``tools/test.py``: evaluate a checkpoint or an exported model on the config's test split.

``sscma test best.pth`` is enough: the checkpoint carries its config (``sscma test CONFIG best.pth`` uses CONFIG
once it is found to describe the same model). MODEL may also be a file exported by ``tools/export.py`` (``.onnx``, TorchScript ``.pt``, ``.tflite`` or a
plug-in target's); it is then run by its target's backend (onnxruntime, torch.jit, LiteRT ...) behind the
config's own test pipeline, post-processing and metric.
"""
import argparse
import os

from sscma.utils import CfgOptionsAction

from . import add_model_arguments, model_and_config

DESCRIPTION = 'Evaluate a trained model on the config\'s test split'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser, 'checkpoint (.pth) or exported model (.onnx, TorchScript .pt, .tflite) to evaluate')
    parser.add_argument('--work-dir', help='where results.json goes (default: work_dirs/<config name>)')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, default={}, help='override settings')
    parser.add_argument('--out', help='also write every image\'s predictions to this .json file')
    parser.add_argument('--runtime', help='run the exported file with another target\'s runtime: "tflm" runs an '
                        'int8 .tflite in TensorFlow Lite Micro (what microcontrollers run) instead of LiteRT')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='"pytorch" under torchrun: the test split is divided between the processes')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0, help=argparse.SUPPRESS)


def main(args: argparse.Namespace) -> None:
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    from sscma.apis.distributed import process_group_teardown
    from sscma.apis.runner import test_model
    config, checkpoint, options = model_and_config(args)
    with process_group_teardown():
        test_model(config, checkpoint, args.work_dir, options, launcher=args.launcher, out=args.out,
                   runtime=args.runtime)
