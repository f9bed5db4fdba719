from .distillation import resolve_teacher
from .inference import run_inference
from .runner import prepare_test_config, prepare_train_config

__all__ = ['prepare_test_config', 'prepare_train_config', 'resolve_teacher', 'run_inference']
