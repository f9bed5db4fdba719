"""Config loading with top-level variable overrides.

OpenMMLab configs derive many fields from a few top-level variables (``max_epochs`` ->
``train_cfg.max_epochs`` and the scheduler's ``end``; ``base_lr`` -> the optimizer's ``lr`` and the cosine
floor; ``num_classes`` -> the head; ``imgsz`` -> every resize). mmengine evaluates a config file once, so
``--cfg-options max_epochs=2`` would only change the ``max_epochs`` key. Here a top-level override is written
into the *source* of every file of the ``_base_`` chain that assigns that variable, and the chain is
evaluated again, so every derived field follows. ``epochs`` and ``lr`` (this project's earlier names) are
accepted as aliases of ``max_epochs`` and ``base_lr``.
"""
import ast
import difflib
import inspect
import os
import os.path as osp
import shutil
import tempfile
from typing import Any, Callable, Dict, List, Optional, Tuple

from mmengine.config import Config
from mmengine.logging import print_log

from .errors import ConfigError
from .packaged_configs import PACKAGE_SCOPE, find_config, packaged_configs_dir
from .packaged_weights import distilled_weights, has_imagenet_weights
from .setup_env import cpu_cores, local_processes

# Earlier names of top-level variables -> the names the configs use (the OpenMMLab / SSCMA words).
VARIABLE_ALIASES: Dict[str, str] = {'epochs': 'max_epochs', 'lr': 'base_lr'}
_aliases_reported: set = set()


def _base_path(base: str, child: str) -> str:
    """Where a ``_base_`` entry of ``child`` points: ``sscma::<rel>`` in the packaged configs, else relative to
    ``child`` (absolute paths as they are)."""
    if base.startswith(PACKAGE_SCOPE):
        return osp.join(packaged_configs_dir(), base[len(PACKAGE_SCOPE):])
    return osp.join(osp.dirname(child), base)


def _base_files(path: str) -> List[str]:
    """Return ``path`` and every file it inherits from (absolute paths), bases before the files using them."""
    order: List[str] = []

    def visit(p: str, child: Optional[str]) -> None:
        p = osp.abspath(p)
        if not osp.isfile(p):
            where = f' (named in _base_ of {child})' if child else ''
            raise ConfigError(f'config file not found: {p}{where}')
        if p in order:
            return
        for base in _read_bases(p):
            if '::' in base and not base.startswith(PACKAGE_SCOPE):  # another package's ('mmdet::...'): not patched
                continue
            visit(_base_path(base, p), p)
        order.append(p)

    visit(path, None)
    return order


def _parse(path: str) -> ast.Module:
    with open(path, encoding='utf-8') as f:
        source = f.read()
    try:
        return ast.parse(source, filename=path)
    except SyntaxError as e:
        raise ConfigError(f'{path}:{e.lineno}: invalid Python in config: {e.msg}') from None


def _read_bases(path: str) -> List[str]:
    for node in _parse(path).body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == '_base_' for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                raise ConfigError(f'{path}: _base_ must be a string or a list of strings') from None
            return [value] if isinstance(value, str) else list(value)
    return []


def _assigned_names(tree: ast.Module) -> Dict[str, ast.Assign]:
    names = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            names[node.targets[0].id] = node
    return names


def _positive_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _positive_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0


def _probability(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1


# What the documented top-level variables must hold; checked on the config's values and the overrides alike.
VARIABLE_RULES: Dict[str, Tuple[str, Callable[[Any], bool]]] = {
    'max_epochs': ('a positive integer', _positive_int),
    'num_classes': ('a positive integer', _positive_int),
    'batch': ('a positive integer', _positive_int),
    'workers': ("an integer >= 0 or 'auto'",
                lambda v: v == 'auto' or (isinstance(v, int) and not isinstance(v, bool) and v >= 0)),
    'base_lr': ('a positive number', _positive_number),
    'widen_factor': ('a positive number', _positive_number),
    'imgsz': ('(width, height), two positive integers, e.g. imgsz="(96,96)"',
              lambda v: isinstance(v, (tuple, list)) and len(v) == 2 and all(map(_positive_int, v))),
    **{name: ('a probability in [0, 1]', _probability) for name in ('mosaic', 'copy_paste', 'mixup')},
    'init': ("'imagenet' (pretrained features) or 'scratch' (random initialisation)",
             lambda v: v in ('imagenet', 'scratch')),
    'class_match': ("'name' (same class names as the model, any order) or 'shared' (score the classes both have)",
                    lambda v: v in ('name', 'shared')),
}


def check_variables(variables: Dict[str, Any], overridden: Any, path: str) -> None:
    """Raise :class:`ConfigError` naming the first variable of :data:`VARIABLE_RULES` with a wrong value."""
    for name, (expected, ok) in VARIABLE_RULES.items():
        if name in variables and not ok(variables[name]):
            source = '--cfg-options' if name in overridden else path
            raise ConfigError(f'{name}={variables[name]!r} ({source}): expected {expected}')
    if variables.get('init') == 'imagenet' and 'widen_factor' in variables:
        if not has_imagenet_weights(variables['widen_factor']):
            source = '--cfg-options' if 'widen_factor' in overridden else path
            raise ConfigError(f"widen_factor={variables['widen_factor']!r} ({source}) with init='imagenet': ImageNet "
                              f'features are packaged for widths {sorted(distilled_weights()) + [1.0]}; add '
                              'init=scratch to train this width from random weights')


def _suggest(name: str, choices: Any) -> str:
    close = difflib.get_close_matches(name, [str(c) for c in choices], n=3, cutoff=0.6)
    return f'; did you mean {", ".join(close)}?' if close else ''


def check_option_keys(cfg: Config, options: Dict[str, Any], path: str) -> None:
    """Raise :class:`ConfigError` for an override whose key the config does not have.

    mmengine would silently add such a key (``epoch=3`` next to ``max_epochs``; ``model.haed.x`` beside
    ``model.head``), and the run would ignore it. A new last component of a dotted key is allowed (a new
    argument of an existing component); so are top-level keys that ``Runner`` reads (``load_from``, ...).
    """
    for key, value in options.items():
        parts = key.split('.')
        if parts[0] == 'custom_imports':  # OpenMMLab plug-in modules, imported by load_config
            continue
        if len(parts) == 1:
            if key in cfg:
                continue
            from mmengine.runner import Runner
            if key in inspect.signature(Runner.__init__).parameters:
                continue
            raise ConfigError(f'--cfg-options {key}={value!r}: {path} has no variable or key {key!r}'
                              f'{_suggest(key, cfg.keys())}')
        node: Any = cfg._cfg_dict
        for i, part in enumerate(parts[:-1]):
            where = '.'.join(parts[:i]) or path
            if isinstance(node, dict):
                if part not in node:
                    has = f' (it has {", ".join(map(str, node))})' if len(node) <= 12 else ''
                    raise ConfigError(f'--cfg-options {key}={value!r}: {where} has no key {part!r}{has}'
                                      f'{_suggest(part, node.keys())}')
                node = node[part]
            elif isinstance(node, (list, tuple)):
                if not (part.isdigit() and int(part) < len(node)):
                    raise ConfigError(f'--cfg-options {key}={value!r}: {where} is a list of {len(node)} items; '
                                      f'{part!r} is not an index of it')
                node = node[int(part)]
            else:
                raise ConfigError(f'--cfg-options {key}={value!r}: {where} is {str(node)[:60]!r}, which has no keys')


def top_level_variables(path: str) -> Dict[str, Any]:
    """Literal top-level variables of ``path`` and its bases; a file's value beats its bases' values."""
    found: Dict[str, Any] = {}
    for p in _base_files(path):
        for name, node in _assigned_names(_parse(p)).items():
            if name.startswith('_'):
                continue
            try:
                found[name] = ast.literal_eval(node.value)
            except ValueError:  # an expression (``head_lr = base_lr * 2``) or a dict of fields: not a variable
                continue
    return found


def load_config(path: str, cfg_options: Optional[Dict[str, Any]] = None) -> Config:
    """Load a config file so that top-level variables propagate through the ``_base_`` chain.

    A literal top-level variable (``max_epochs = 30``) set in a config, or given in ``cfg_options``, replaces
    that variable in every file of the chain that assigns it, before mmengine evaluates them; fields that a
    base derives from it (``train_cfg = dict(max_epochs=max_epochs)``) therefore follow. Other ``cfg_options`` keys
    (``train_dataloader.batch_size``) are merged with :meth:`Config.merge_from_dict` as in mmengine. Values of
    the documented variables (:data:`VARIABLE_RULES`) and the keys of overrides are checked first, so that
    ``max_epochs=-1`` or a misspelt key stops here with the key and value at fault. ``epochs`` and ``lr``
    set ``max_epochs`` and ``base_lr`` (:data:`VARIABLE_ALIASES`) in configs that do not define them.

    Args:
        path (str): The config file, or the name of a packaged one (:func:`find_config`).
        cfg_options (dict, optional): e.g. ``{'max_epochs': 2, 'train_dataloader.batch_size': 8}``.
    """
    path = find_config(path)
    files = _base_files(path)
    variables = top_level_variables(path)
    assigned = set().union(*[_assigned_names(_parse(f)) for f in files])
    options = resolve_aliases(dict(cfg_options or {}), assigned)
    var_opts = {k: v for k, v in options.items() if '.' not in k and k in assigned}
    rest = {k: v for k, v in options.items() if k not in var_opts}
    variables.update(var_opts)
    check_variables(variables, var_opts, path)
    try:
        cfg = _load_patched(path, files, variables) if (len(files) > 1 or var_opts) else _fromfile(path)
    except ConfigError as e:
        if not var_opts:
            raise
        given = ' '.join(f'{k}={v!r}' for k, v in var_opts.items())
        raise ConfigError(f'{e} (with the overrides {given}: the config\'s own code could not use one of them)') \
            from None
    check_option_keys(cfg, rest, path)
    if rest:
        try:
            cfg.merge_from_dict(rest)
        except Exception as e:  # mmengine raises bare TypeErrors/KeyErrors on bad keys
            raise ConfigError(f'cannot apply --cfg-options {rest} to {path}: {e}') from None
    import_custom_modules(cfg, path)
    resolve_auto_workers(cfg)
    return cfg


def auto_num_workers(cores: Optional[int] = None) -> int:
    """Data-loader processes for ``num_workers='auto'``: 0 with at most 2 cores per training process, else 2.

    On 2 cores, loading in the training process beat 1 or 2 worker processes for the default FOMO (186 vs
    130 / 142 img/s, ``tools/benchmarks/throughput.py``, docs/benchmarks.md): a worker takes a core from
    torch's two threads, which then wait for each other at every operation.
    """
    if cores is None:
        cores = cpu_cores() // local_processes()
    return 0 if cores <= 2 else 2


def resolve_auto_workers(cfg: Config) -> None:
    """Set ``num_workers='auto'`` of each dataloader to :func:`auto_num_workers`; no persistent workers at 0."""
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(key)
        if not loader:
            continue
        if loader.get('num_workers') == 'auto':
            loader['num_workers'] = auto_num_workers()
        if not loader.get('num_workers'):
            loader['persistent_workers'] = False  # torch refuses persistent workers without workers


def resolve_aliases(options: Dict[str, Any], assigned: Any) -> Dict[str, Any]:
    """Rename alias keys of ``options`` (``epochs``, ``lr``) to the variables the config assigns.

    An alias is renamed only when the config chain assigns its target and not the alias itself (a user's
    own config with an ``epochs`` variable keeps it). Each renaming is logged once per process.
    """
    renamed = {}
    for key, value in options.items():
        target = VARIABLE_ALIASES.get(key)
        if target and key not in assigned and target in assigned:
            if target in options:
                raise ConfigError(f'--cfg-options {key}={value!r} and {target}={options[target]!r}: {key} is '
                                  f'another name for {target}; give one of them')
            if key not in _aliases_reported:
                _aliases_reported.add(key)
                print_log(f'--cfg-options {key}={value!r} sets {target} (the config\'s name for it; {key} is '
                          'accepted as an alias)', logger='current')
            key = target
        renamed[key] = value
    return renamed


def import_custom_modules(cfg: Config, path: str) -> None:
    """Import the modules of ``cfg.custom_imports`` (OpenMMLab's plug-in convention, e.g.
    ``custom_imports=dict(imports=['my_targets'], allow_failed_imports=False)``; a list of names also works),
    so that the components they register can be named in the config. mmengine imports those of the file
    itself; this also covers ``--cfg-options custom_imports.imports="['my_targets']"``.
    """
    spec = cfg.get('custom_imports')
    if not spec:
        return
    spec = dict(imports=spec) if isinstance(spec, (str, list, tuple)) else dict(spec)
    from mmengine.utils import import_modules_from_strings
    try:
        import_modules_from_strings(**spec)
    except (ImportError, TypeError) as e:
        raise ConfigError(f'{path}: custom_imports={spec!r}: {type(e).__name__}: {e}') from None


def _fromfile(path: str, shown_as: Optional[str] = None) -> Config:
    try:
        # format_python_code=False: mmengine stores cfg.pretty_text in every checkpoint, and formatting it
        # with yapf took 0.4 s per save (two saves per epoch: more than a 96x96 FOMO epoch's compute)
        return Config.fromfile(path, format_python_code=False)
    except ConfigError:
        raise
    except (SyntaxError, NameError, ImportError, FileNotFoundError, KeyError, TypeError, AttributeError, IndexError,
            ValueError) as e:
        raise ConfigError(f'cannot load config {shown_as or path}: {type(e).__name__}: {e}') from None


def _load_patched(path: str, files: List[str], variables: Dict[str, Any]) -> Config:
    root = osp.commonpath([osp.dirname(f) for f in files])
    tmp = tempfile.mkdtemp(prefix='sscma_cfg_')
    try:
        for f in files:
            tree = _parse(f)
            out = osp.join(tmp, osp.relpath(f, root))
            for name, node in _assigned_names(tree).items():
                if name in variables:
                    node.value = ast.parse(repr(variables[name]), mode='eval').body
                elif name == '_base_':  # an absolute or packaged base must name the patched copy, not the original
                    for const in ast.walk(node.value):
                        if isinstance(const, ast.Constant) and isinstance(const.value, str) and (
                                osp.isabs(const.value) or const.value.startswith(PACKAGE_SCOPE)):
                            patched = osp.join(tmp, osp.relpath(osp.abspath(_base_path(const.value, f)), root))
                            const.value = osp.relpath(patched, osp.dirname(out))
            os.makedirs(osp.dirname(out), exist_ok=True)
            with open(out, 'w', encoding='utf-8') as fh:
                fh.write(ast.unparse(ast.fix_missing_locations(tree)))
        cfg = _fromfile(osp.join(tmp, osp.relpath(osp.abspath(path), root)), shown_as=path)
        # Keep the user's file name (work_dir defaults and logs use it), not the temporary copy.
        cfg = Config(cfg.to_dict(), filename=path, format_python_code=False)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return cfg


def config_source(path: str, options: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """What rebuilds the config ``path`` (a file or a packaged name) with ``options`` anywhere: the text of it
    and of every base it inherits from, keyed by path relative to their common folder, the entry's key, and the
    options. Checkpoints and exported files carry it (``meta['config_source']``), so that a model file alone
    gives back its config, variables still propagating (``--cfg-options data_root=...`` reaches the datasets)."""
    files = _base_files(find_config(path))
    root = osp.commonpath([osp.dirname(f) for f in files])
    texts = {}
    for f in files:
        with open(f, encoding='utf-8') as fh:
            texts[osp.relpath(f, root).replace(os.sep, '/')] = _relative_bases(fh.read(), f)
    return dict(entry=osp.relpath(files[-1], root).replace(os.sep, '/'), files=texts, options=dict(options or {}))


def _relative_bases(text: str, path: str) -> str:
    """``text`` of the config at ``path`` with absolute and ``sscma::`` bases rewritten relative to it, so that
    the copies of :func:`config_source` name each other wherever they are written."""
    node = _assigned_names(ast.parse(text)).get('_base_')
    bases = ast.literal_eval(node.value) if node is not None else []  # already checked by _base_files
    bases = [bases] if isinstance(bases, str) else list(bases)
    if not any(osp.isabs(b) or b.startswith(PACKAGE_SCOPE) for b in bases):
        return text
    lines = text.splitlines(keepends=True)
    relative = [osp.relpath(osp.abspath(_base_path(b, path)), osp.dirname(osp.abspath(path))).replace(os.sep, '/')
                if (osp.isabs(b) or b.startswith(PACKAGE_SCOPE)) else b for b in bases]
    return ''.join(lines[:node.lineno - 1]) + f'_base_ = {relative!r}\n' + ''.join(lines[node.end_lineno:])


def write_config_source(source: Dict[str, Any]) -> str:
    """Write a :func:`config_source` into a folder of its own (named by its content) and return the entry's
    path (its own file name: work dirs and logs are named after the config, as when it was trained)."""
    import hashlib
    import json
    digest = hashlib.sha1(json.dumps(source['files'], sort_keys=True).encode('utf-8')).hexdigest()[:16]
    user = getattr(os, 'getuid', lambda: 'user')()
    folder = osp.join(tempfile.gettempdir(), f'sscma_configs_{user}', digest)  # per user; same content, same folder
    entry = source['entry']
    for rel, text in source['files'].items():
        target = osp.normpath(osp.join(folder, rel))
        if not target.startswith(folder + os.sep):
            raise ConfigError(f'embedded config file {rel!r} points outside its folder')
        if osp.isfile(target):
            with open(target, encoding='utf-8') as f:
                if f.read() == text:
                    continue
        os.makedirs(osp.dirname(target), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=osp.dirname(target), suffix='.tmp')  # processes writing at once never meet
        with os.fdopen(fd, 'w', encoding='utf-8') as f:
            f.write(text)
        os.replace(tmp, target)
    return osp.join(folder, entry)
