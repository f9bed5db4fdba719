from .distillation import resolve_teacher
from .inference import run_inference
from .runner import check_checkpoint_fits, prepare_test_config, prepare_train_config

__all__ = ['check_checkpoint_fits', 'prepare_test_config', 'prepare_train_config', 'resolve_teacher', 'run_inference']
