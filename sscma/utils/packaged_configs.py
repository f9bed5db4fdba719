"""The configs shipped inside the package, found by name from any folder (``sscma train fomo_mobnetv2``)."""
import difflib
import os
import os.path as osp
from typing import List, Sequence

from .errors import ConfigError

PACKAGE_SCOPE = 'sscma::'


def packaged_configs_dir() -> str:
    """The configs shipped inside the package (``sscma/.mim/configs``: a link to the repository's
    ``configs/`` in a checkout, copies in a wheel)."""
    return osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), '.mim', 'configs')


def packaged_configs() -> List[str]:
    """Names of the packaged configs (``fomo/fomo_mobnetv2`` ...), bases left out."""
    root = packaged_configs_dir()
    found = []
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs[:] = sorted(d for d in dirs if d != '_base_')
        found += [osp.relpath(osp.join(folder, f), root)[:-3].replace(os.sep, '/') for f in sorted(files)
                  if f.endswith('.py')]
    return sorted(found)


def find_config(name: str) -> str:
    """The config file ``name`` means: a path to a file, else a packaged config by its name from any folder
    (``fomo_mobnetv2``, ``fomo/fomo_mobnetv2_small_data``, ``sscma::fomo/fomo_mobnetv2.py``).

    Raises:
        ConfigError: neither a file nor a packaged config (the message lists close names).
    """
    if osp.isfile(name):
        return name
    rel = name[len(PACKAGE_SCOPE):] if name.startswith(PACKAGE_SCOPE) else name
    rel = rel[:-3] if rel.endswith('.py') else rel
    names = packaged_configs()
    matches = [n for n in names if n == rel] or [n for n in names if '/' not in rel and n.split('/')[-1] == rel]
    if len(matches) == 1:
        return osp.join(packaged_configs_dir(), matches[0] + '.py')
    if len(matches) > 1:
        raise ConfigError(f'config {name!r} is ambiguous: {", ".join(matches)}; give the folder too')
    raise ConfigError(f'config file not found: {name} (neither a file nor a packaged config; `sscma configs` lists '
                      f'them{_suggest(rel.split("/")[-1], [n.split("/")[-1] for n in names])})')


def _suggest(name: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.6)
    return f'; did you mean {", ".join(close)}?' if close else ''
