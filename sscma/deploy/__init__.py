"""Model export and evaluation of exported models.

Export targets (ONNX, TorchScript, TFLite, vela, plug-ins) are :data:`~sscma.registry.EXPORT_TARGETS`
components (:mod:`sscma.deploy.targets`); what a model's exported output means is its task's
(:data:`~sscma.registry.TASKS`, :mod:`sscma.tasks`). Model code never imports this package;
``tools/export.py`` and ``tools/test.py`` (for exported files) do.
"""
from .backend_model import BackendModel, config_input_hw, postprocess
from .exporter import export_model
from .model_meta import model_class_names, read_export_meta
from .targets import ExportTarget, all_precisions, backend_kind, get_target, load_backend, target_names
from .wrapper import RawInputWrapper, raw_pixel_preprocessor, wrap_for_export

__all__ = [
    'BackendModel', 'config_input_hw', 'postprocess', 'export_model', 'model_class_names', 'read_export_meta',
    'ExportTarget', 'all_precisions', 'backend_kind', 'get_target', 'load_backend', 'target_names', 'RawInputWrapper',
    'raw_pixel_preprocessor', 'wrap_for_export'
]
