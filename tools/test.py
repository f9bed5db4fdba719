"""Evaluate a checkpoint: ``python tools/test.py CONFIG CHECKPOINT [--work-dir DIR]``.

CHECKPOINT may also be a file exported by ``tools/export.py`` (``.onnx``, TorchScript ``.pt``, ``.tflite`` or a
plug-in target's); it is then run by its target's backend (onnxruntime, torch.jit, LiteRT ...) behind the
config's own test pipeline, post-processing and metric.
"""
import sscma  # noqa: F401  (sets up protobuf for ppq before anything imports it)
from sscma.cli import run_command

if __name__ == '__main__':
    run_command('test')  # the same as `sscma test` (sscma/cli/test.py)
