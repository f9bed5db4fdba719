"""Turning user mistakes into one clear line on stderr instead of a library traceback."""
import difflib
import re
import sys
from typing import Callable, List

from .errors import SSCMAError

_NOT_REGISTERED = re.compile(r'`?([\w.]+)`? is not in the (\w+)::([\w ]+?) registry')


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


def run_cli(main: Callable[[], None]) -> None:
    """Run a tool's ``main`` and report user errors as ``error: ...`` with exit status 2."""
    try:
        main()
    except SSCMAError as e:
        sys.exit(f'error: {e}')
    except KeyError as e:
        text = str(e.args[0]) if e.args else str(e)
        if _NOT_REGISTERED.search(text):
            sys.exit(f'error: {explain_unregistered(text)}')
        raise
    except FileNotFoundError as e:
        sys.exit(f'error: {e}')
