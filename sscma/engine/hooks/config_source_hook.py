"""Every checkpoint carries the config that made it, so that the checkpoint alone is enough to test, export,
predict or resume (``sscma test best.pth``)."""
from typing import Any, Dict, Optional

from mmengine.hooks import Hook

from sscma.registry import HOOKS


@HOOKS.register_module()
class ConfigSourceHook(Hook):
    """Write the run's config source into each checkpoint's ``meta['config_source']``: the text of the config
    file and of every base it inherits from, and the ``--cfg-options`` the run was started with
    (:func:`sscma.utils.config.config_source`); mmengine's own ``meta['cfg']`` is the flattened result, in which
    a variable such as ``data_root`` no longer reaches the fields derived from it.

    Args:
        options (dict, optional): The run's ``--cfg-options`` (set by ``tools/train.py``).
    """
    priority = 'VERY_LOW'

    def __init__(self, options: Optional[Dict[str, Any]] = None) -> None:
        self.options = dict(options or {})
        self.source: Optional[Dict[str, Any]] = None

    def before_run(self, runner) -> None:
        from sscma.utils.config import config_source
        filename = getattr(runner.cfg, 'filename', None)
        try:
            self.source = config_source(filename, self.options) if filename else None
        except Exception:  # a config built in code (no file): the checkpoint keeps mmengine's flattened copy only
            self.source = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.source is not None:
            checkpoint.setdefault('meta', {})['config_source'] = self.source
