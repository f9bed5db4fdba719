"""The package's shape: no import cycle (ast walk of every import, deferred ones included) and small files."""
import ast
import os
import os.path as osp
from typing import Dict, List, Set

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
PACKAGE = osp.join(REPO, 'sscma')
MAX_LINES = 400


def _modules() -> Dict[str, str]:
    """``{'sscma.deploy.exporter': path}`` for every module (packages by their ``__init__.py``)."""
    mods = {}
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith('.py'):
                path = osp.join(folder, name)
                mod = osp.relpath(path, REPO)[:-3].replace(os.sep, '.')
                mods[mod[:-len('.__init__')] if mod.endswith('.__init__') else mod] = path
    return mods


def _imports(mod: str, path: str, mods: Dict[str, str]) -> Set[str]:
    """The sscma modules that ``mod`` imports anywhere in its file (top level, functions, methods)."""
    is_pkg = path.endswith('__init__.py')
    found = set()
    for node in ast.walk(ast.parse(open(path, encoding='utf-8').read(), filename=path)):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                parts = mod.split('.') if is_pkg else mod.split('.')[:-1]
                parts = parts[:len(parts) - node.level + 1]
                base = '.'.join(parts + ([base] if base else []))
            names = [f'{base}.{a.name}' if f'{base}.{a.name}' in mods else base for a in node.names]
        for name in names:
            while name not in mods and '.' in name:
                name = name.rsplit('.', 1)[0]
            if name in mods and name != mod:
                found.add(name)
    return found


def _cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


@pytest.fixture(scope='module')
def module_graph() -> Dict[str, Set[str]]:
    mods = _modules()
    return {mod: _imports(mod, path, mods) for mod, path in mods.items()}


def test_no_import_cycle_between_modules(module_graph):
    assert _cycles(module_graph) == []


def test_no_import_cycle_between_subpackages(module_graph):
    """``sscma.utils`` and ``sscma.registry`` at the bottom, ``sscma.apis`` / ``sscma.deploy`` near the top and
    ``sscma.cli`` (the commands) and the package's own namespace (``sscma.Model``) above them: a subpackage never
    imports one that imports it back (e.g. models reading configs through utils)."""
    def top(mod: str) -> str:
        return '.'.join(mod.split('.')[:2])

    graph: Dict[str, Set[str]] = {}
    for mod, deps in module_graph.items():
        graph.setdefault(top(mod), set()).update(top(d) for d in deps if top(d) != top(mod))
    assert _cycles(graph) == []
    assert graph['sscma.utils'] <= {'sscma.registry'}
    assert {pkg for pkg, deps in graph.items() if 'sscma.apis' in deps} <= {'sscma.cli', 'sscma'}  # commands on top


def test_cycle_finder_finds_a_cycle():
    assert _cycles({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}) == [['a', 'b', 'c']]


def test_no_file_over_400_lines():
    """Small files with one public class each (the mmpretrain shape)."""
    long = {}
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith('.py'):
                path = osp.join(folder, name)
                with open(path, encoding='utf-8') as f:
                    n = sum(1 for _ in f)
                if n > MAX_LINES:
                    long[osp.relpath(path, REPO).replace(os.sep, '/')] = n
    assert not long, long
