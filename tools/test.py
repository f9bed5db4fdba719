"""Evaluate a checkpoint: ``python tools/test.py CONFIG CHECKPOINT [--work-dir DIR]``.

CHECKPOINT may also be a model exported by ``tools/export.py`` (``.onnx`` or TorchScript ``.pt``); it is then
run with onnxruntime / torch.jit behind the config's own test pipeline, post-processing and metric.
"""
import sscma  # noqa: F401  (sets up protobuf for ppq before anything imports it)
from sscma.cli import run_command

if __name__ == '__main__':
    run_command('test')  # the same as `sscma test` (sscma/cli/test.py)
