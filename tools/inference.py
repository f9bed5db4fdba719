"""Run a model on your images, video or camera:
``python tools/inference.py [CONFIG] MODEL SOURCE [--out DIR] [--score-thr T] [--show] [--cfg-options ...]``
(a model file alone is enough: it carries its config).

MODEL is a ``.pth`` checkpoint or a file exported by ``tools/export.py`` (``.onnx``, ``.pt``, ``.tflite``);
SOURCE an image, a folder, a glob, a video file or a camera index. Writes annotated images or video and
``predictions.json`` (default ``work_dirs/inference/<config name>``).
"""
import sscma  # noqa: F401  (sets up protobuf for ppq before anything imports it)
from sscma.cli import run_command

if __name__ == '__main__':
    run_command('predict')  # the same as `sscma predict` (sscma/cli/predict.py)
