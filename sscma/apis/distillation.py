"""Turn a distillation config's ``teacher_config`` file into the teacher's model config, before building.

Models never read config files (that would make ``sscma.models`` depend on config loading and the registries
that it sets up); the entry points that train do it here. ``tools/test.py`` and ``tools/export.py`` skip it:
``predict`` and ``tensor`` never run the teacher, so the student alone is built and no teacher checkpoint is
needed.
"""
import glob
import os.path as osp
from typing import Any, Dict

from sscma.utils import ConfigError, load_config


def teacher_checkpoint_file(checkpoint: str, teacher_config: str) -> str:
    """A checkpoint file, or the single ``best_*.pth`` of a work dir, with an actionable error otherwise."""
    how = (f'train the teacher first (python tools/train.py {teacher_config} --work-dir DIR) and pass '
           '--cfg-options teacher_checkpoint=DIR (its best_*.pth is used) or a .pth file')
    found = checkpoint if checkpoint and osp.exists(checkpoint) else None
    if found is None:
        raise ConfigError(f'teacher_checkpoint={checkpoint!r}: no such file or work dir; {how}')
    if osp.isdir(found):
        best = sorted(glob.glob(osp.join(found, 'best_*.pth')))
        if len(best) != 1:
            what = 'no best_*.pth' if not best else f'{len(best)} best_*.pth files ({", ".join(best)})'
            raise ConfigError(f'teacher_checkpoint={checkpoint!r} is a folder with {what}; '
                              'name the checkpoint file instead')
        return best[0]
    return found


def resolve_teacher(model_cfg: Dict[str, Any]) -> Dict[str, Any]:
    """``model_cfg`` with ``teacher_config`` (a config file) read into ``teacher`` (that config's ``model``),
    ``teacher_cfg_options`` applied to it as ``--cfg-options`` would, and ``teacher_checkpoint`` resolved to
    one ``.pth`` file (a work dir gives its ``best_*.pth``). Other model configs come back unchanged.

    Raises:
        ConfigError: the teacher's config or checkpoint cannot be found, or the config defines no model.
    """
    teacher_config = model_cfg.get('teacher_config') if hasattr(model_cfg, 'get') else None
    if not teacher_config or model_cfg.get('teacher') is not None:
        return model_cfg
    try:
        cfg = load_config(teacher_config, model_cfg.get('teacher_cfg_options'))  # a file, or a packaged config
    except ConfigError as e:
        raise ConfigError(f'teacher_config={teacher_config!r}: {e}') from None
    if 'model' not in cfg:
        raise ConfigError(f'teacher_config={teacher_config!r} defines no model')
    resolved = dict(model_cfg)
    resolved.pop('teacher_cfg_options', None)
    resolved['teacher'] = cfg.model
    resolved['teacher_checkpoint'] = teacher_checkpoint_file(model_cfg.get('teacher_checkpoint'), teacher_config)
    return resolved
