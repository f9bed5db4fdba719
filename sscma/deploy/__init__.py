"""Model export (ONNX / TorchScript, float32 / float16 / int8) and evaluation of exported models.

Model code never imports this package; ``tools/export.py`` and ``tools/test.py`` (for ``.onnx`` / TorchScript
files) do.
"""
from .backend_model import BackendModel, backend_kind, config_input_hw, load_backend, postprocess, task_of
from .exporter import PRECISIONS, TARGETS, export_model
from .wrapper import RawInputWrapper, raw_pixel_preprocessor, wrap_for_export

__all__ = [
    'BackendModel', 'backend_kind', 'config_input_hw', 'load_backend', 'postprocess', 'task_of', 'PRECISIONS',
    'TARGETS', 'export_model', 'RawInputWrapper', 'raw_pixel_preprocessor', 'wrap_for_export'
]
