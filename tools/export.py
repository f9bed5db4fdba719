"""Export a checkpoint to ONNX / TorchScript / TFLite / vela / TFLite Micro C source / IMX500 (or any registered
target) and measure the files.

``python tools/export.py CONFIG CHECKPOINT [--targets onnx torchscript tflite vela tflm imx500]
[--precisions float32 float16 int8] [--calib-batches N] [--input-shape H W] [--work-dir DIR]
[--vela-accelerator ethos-u55-128] [--cfg-options k=v ...]``

Targets are :data:`sscma.registry.EXPORT_TARGETS` components; a plug-in module that registers more is loaded
with ``--cfg-options custom_imports.imports="['my_package.my_target']"`` (OpenMMLab's ``custom_imports``).
Writes ``<checkpoint stem>_<precision><suffix>`` per target (``.onnx``, ``.pt``, ``.tflite``, ``_vela.tflite``,
``_model_data.cc/.h``, ``_imx500.onnx``), ``export_report.json`` and ``export_report.md`` to the work dir
(default: ``<checkpoint folder>/export``). The exported graphs take raw pixels (float NCHW, 0..255, RGB
for colour models) and normalise them inside; see ``export_report.md`` for inputs, outputs, parity with
PyTorch, latency and the test metric of every file. Evaluate a file again with
``python tools/test.py CONFIG FILE``.
"""
import sscma  # noqa: F401  (sets up protobuf for ppq before anything imports it)
from sscma.cli import run_command

if __name__ == '__main__':
    run_command('export')  # the same as `sscma export` (sscma/cli/export.py)
