"""Export targets (:data:`~sscma.registry.EXPORT_TARGETS`): one module per kind of exported file.

Registration order is the order of the default ``--targets`` and of the report's rows.
"""
from .base import (ExportTarget, all_precisions, backend_kind, get_target, load_backend, target_for_file,
                   target_names)
from .onnx import OnnxTarget
from .torchscript import TorchScriptTarget
from .tflite import TFLiteTarget
from .vela import VelaTarget
from .tflm import TFLMTarget
from .imx500 import IMX500Target

__all__ = ['ExportTarget', 'all_precisions', 'backend_kind', 'get_target', 'load_backend', 'target_for_file',
           'target_names', 'OnnxTarget', 'TorchScriptTarget', 'TFLiteTarget', 'VelaTarget',
           'TFLMTarget', 'IMX500Target']
