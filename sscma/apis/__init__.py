from .runner import prepare_test_config, prepare_train_config

__all__ = ['prepare_test_config', 'prepare_train_config']
