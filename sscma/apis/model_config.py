"""A checkpoint (or exported file) is enough on its own: the config it was made with travels inside it.

Training writes the config's files and ``--cfg-options`` into every checkpoint (``meta['config_source']``, by
:class:`~sscma.engine.hooks.ConfigSourceHook`; mmengine adds the flattened ``meta['cfg']``); pruning writes the
pruned architecture's there, and ``tools/export.py`` stores it in every exported file's metadata. :func:`resolve_model_config` turns ``(CONFIG or None, MODEL)`` into the config to use: the
embedded one when CONFIG is left out; a CONFIG given beside the model still wins, after
:func:`check_config_matches` has compared its model with the embedded one.
"""
import os.path as osp
from typing import Any, Dict, Optional, Tuple

from sscma.utils import ConfigError, load_config
from sscma.utils.config import write_config_source

# model fields that change nothing in the weights: a config may differ there from the model's own
NOT_ARCHITECTURE = ('test_cfg', 'train_cfg', 'score_thr', 'augments', 'init_cfg', 'teacher_checkpoint', 'teacher_config',
                    'teacher_cfg_options', 'teacher')


def embedded_config(model_file: str) -> Optional[Tuple[str, Dict[str, Any]]]:
    """``(config file, its training options)`` rebuilt from what ``model_file`` carries: the config source
    (:class:`~sscma.engine.hooks.ConfigSourceHook`, export metadata), else mmengine's flattened ``meta['cfg']``;
    ``None`` when it carries neither."""
    from sscma.deploy import backend_kind, read_export_meta
    if backend_kind(model_file):
        meta = read_export_meta(model_file) or {}
    else:
        from sscma.utils.checkpoint import CheckpointError, read_checkpoint
        try:
            ckpt = read_checkpoint(model_file)
        except CheckpointError as e:
            raise ConfigError(f'cannot read checkpoint {model_file}: {e}') from None
        meta = ckpt.get('meta') if isinstance(ckpt, dict) else None
        meta = meta if isinstance(meta, dict) else {}
    source = meta.get('config_source')
    if not (isinstance(source, dict) and isinstance(source.get('files'), dict) and source.get('entry') in source['files']):
        text = meta.get('cfg')
        if not (isinstance(text, str) and text.strip()):
            return None
        name = osp.splitext(osp.basename(model_file))[0] + '.py'
        source = dict(entry=name, files={name: text}, options={})
    return write_config_source(source), dict(source.get('options') or {})


def resolve_model_config(config: Optional[str], model_file: str,
                         cfg_options: Optional[Dict[str, Any]] = None) -> Tuple[str, Dict[str, Any]]:
    """The config and options to use with ``model_file``.

    With ``config`` None: the config embedded in ``model_file``, with its training ``--cfg-options`` under
    ``cfg_options``. With a ``config`` (a file or a packaged name): it, with ``cfg_options``, once
    :func:`check_config_matches` has found that it describes the model ``model_file`` holds.

    Raises:
        ConfigError: no config given and none embedded, or a given config whose model differs from the
            embedded one (the first differing key is named).
    """
    if not osp.isfile(model_file):
        raise ConfigError(f'checkpoint file not found: {model_file}')
    options = dict(cfg_options or {})
    embedded = embedded_config(model_file)
    if config is None:
        if embedded is None:
            raise ConfigError(f'{model_file} carries no config (written before checkpoints carried theirs, or not by '
                              'sscma): give the config it was trained with before it, e.g. sscma test CONFIG MODEL')
        path, trained_with = embedded
        from mmengine.logging import MMLogger
        MMLogger.get_current_instance().info(f'using the config saved in {model_file} ({osp.basename(path)}); a '
                                             'config is Python that runs: use model files you trust, as any config')
        return path, {**trained_with, **options}
    if embedded is not None:
        path, trained_with = embedded
        check_config_matches(config, options, path, {**trained_with, **options}, model_file)
    return config, options


def _first_difference(a: Any, b: Any, where: str) -> Optional[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if key in NOT_ARCHITECTURE:
                continue
            if key not in a or key not in b:
                return f'{where}.{key} (only in the {"model" if key in b else "config"})'
            found = _first_difference(a[key], b[key], f'{where}.{key}')
            if found:
                return found
        return None
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            found = _first_difference(x, y, f'{where}.{i}')
            if found:
                return found
        return None
    return None if a == b else f'{where}: {a!r} in the config, {b!r} in the model'


def check_config_matches(config: str, options: Dict[str, Any], embedded: str, embedded_options: Dict[str, Any],
                         model_file: str) -> None:
    """Refuse ``config`` (with ``options``) when its ``model`` differs from the one ``model_file`` was made
    with, naming the first differing key; fields that do not shape the weights (:data:`NOT_ARCHITECTURE`) may
    differ."""
    given = load_config(config, options).to_dict().get('model')
    own = load_config(embedded, embedded_options).to_dict().get('model')
    diff = _first_difference(given, own, 'model')
    if diff:
        raise ConfigError(f'{config} does not describe the model in {model_file}: {diff}; leave CONFIG out to use '
                          'the config saved in it, or give the same --cfg-options as for training')
