"""Turning user mistakes into one clear line on stderr instead of a library traceback."""
import argparse
import contextlib
import difflib
import os
import os.path as osp
import re
import shutil
import sys
from typing import Callable, Iterator, List, Optional

from mmengine.config import DictAction

from .errors import SSCMAError

_NOT_REGISTERED = re.compile(r'`?([\w.]+)`? is not in the (\w+)::([\w ]+?) registry')
_UNEXPECTED_ARG = re.compile(r"(\w+)\.__init__\(\) got an unexpected keyword argument '(\w+)'")


def registered_names(registry_name: str) -> List[str]:
    """Every name the ``sscma`` scope can build from the registry called ``registry_name``."""
    import sscma.registry as registries
    for obj in vars(registries).values():
        if getattr(obj, 'name', None) == registry_name and getattr(obj, 'scope', None) == 'sscma':
            obj.import_from_location()
            root = obj._get_root_registry()
            names = set(obj.module_dict) | set(root.module_dict)
            for scope, child in root._children.items():
                if scope != 'sscma':
                    names |= {f'{scope}.{n}' for n in child.module_dict}
            return sorted(names)
    return []


def explain_unregistered(message: str) -> str:
    """Add close-match suggestions to mmengine's 'X is not in the Y registry' message."""
    m = _NOT_REGISTERED.search(message)
    if not m:
        return message
    name, _, registry_name = m.groups()
    candidates = registered_names(registry_name)
    lowered = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.6)
    hint = f'; did you mean {", ".join(repr(lowered[c]) for c in close)}?' if close else ''
    return (f'unknown type {name!r}: nothing called that is registered in the {registry_name} registry'
            f'{hint} (components of other packages are named like mmdet.Resize)')


def user_error_message(error: BaseException) -> Optional[str]:
    """The one-line message for an error the user caused; ``None`` for anything else (a bug keeps its traceback)."""
    text = str(error.args[0]) if error.args else str(error)
    if isinstance(error, (SSCMAError, FileNotFoundError)):
        # raised in a DataLoader worker, torch re-raises it with the worker's traceback in the message
        return text.strip().splitlines()[-1].split(': ', 1)[-1] if 'Original Traceback' in text else str(error)
    if isinstance(error, KeyError) and _NOT_REGISTERED.search(text):
        return explain_unregistered(text)
    m = _UNEXPECTED_ARG.search(text) if isinstance(error, TypeError) else None
    if m:  # a misspelt key in a component's config dict: mmengine passes it on as a keyword argument
        return (f'{_innermost_built(error) or m.group(1)} takes no argument {m.group(2)!r}: check the spelling of '
                'that key in the config or in --cfg-options')
    return None


def _innermost_built(error: BaseException) -> Optional[str]:
    """Name of the class mmengine's ``build_from_cfg`` was building when ``error`` was raised.

    ``__init__`` errors name the class whose ``__init__`` failed, often a base (``ClsHead`` for a
    ``LinearClsHead``); the config names the registered type, which is what the user can find and fix.
    """
    name, tb = None, error.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_name == 'build_from_cfg' and 'obj_cls' in frame.f_locals:
            name = getattr(frame.f_locals['obj_cls'], '__name__', name)
        tb = tb.tb_next
    return name


def run_cli(main: Callable[[], None]) -> None:
    """Run a tool's ``main`` and report user errors as ``error: ...`` (exit status 1)."""
    try:
        main()
    except Exception as e:
        message = user_error_message(e)
        if message is None:
            raise
        sys.exit(f'error: {message}')


@contextlib.contextmanager
def no_partial_output(work_dir: str) -> Iterator[None]:
    """Remove what a run added to ``work_dir`` when it stops on a user error before producing anything.

    Runners create the work dir, a ``<timestamp>/`` log folder and a config dump before the first dataset or
    model is built, so a mistake found then would leave an empty-looking run behind (and ``--resume`` or
    ``plot_curves.py`` would find it). Entries that existed before are never touched, and nothing is removed
    once the run has written a checkpoint or logged training scalars.
    """
    existed = osp.isdir(work_dir)
    before = set(os.listdir(work_dir)) if existed else set()
    try:
        yield
    except Exception as e:
        if user_error_message(e) is not None and osp.isdir(work_dir):
            new = [osp.join(work_dir, n) for n in set(os.listdir(work_dir)) - before]
            produced = any(p.endswith('.pth') or osp.isfile(osp.join(p, 'vis_data', 'scalars.json')) for p in new)
            if not produced:
                for p in new:
                    shutil.rmtree(p) if osp.isdir(p) and not osp.islink(p) else os.remove(p)
                if not existed and not os.listdir(work_dir):
                    os.rmdir(work_dir)
        raise


class CfgOptionsAction(DictAction):
    """mmengine's ``DictAction`` for ``--cfg-options``, rejecting items that are not ``KEY=VALUE``."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        for kv in values or []:
            key = kv.split('=', 1)[0]
            if '=' not in kv or not key or not re.fullmatch(r'[\w.]+', key):
                raise argparse.ArgumentError(
                    self, f'{kv!r} is not KEY=VALUE (e.g. max_epochs=10 base_lr=0.01 imgsz="(96,96)" '
                    'model.head.num_classes=3; no spaces around "=")')
        super().__call__(parser, namespace, values, option_string)
