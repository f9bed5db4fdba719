from .config import load_config, top_level_variables
from .cli import CfgOptionsAction, no_partial_output, run_cli, user_error_message
from .errors import ConfigError, DatasetError, ExportError, SSCMAError
from .setup_env import allow_checkpoint_globals, register_all_modules

__all__ = [
    'load_config', 'top_level_variables', 'ConfigError', 'DatasetError', 'ExportError', 'SSCMAError',
    'allow_checkpoint_globals', 'register_all_modules', 'run_cli', 'CfgOptionsAction', 'no_partial_output',
    'user_error_message'
]
