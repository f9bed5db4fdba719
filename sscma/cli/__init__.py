"""One console command for the tools: ``sscma train ...`` runs what ``python tools/train.py ...`` runs.

Each command is a module with ``DESCRIPTION``, ``add_arguments(parser)`` and ``main(args)``; ``tools/*.py``
and the ``sscma`` entry point (``setup.py``) both call :func:`run_command`, so the two spellings take the
same arguments and run the same function. A new command is a module and a row of :data:`COMMANDS`.
"""
import argparse
import importlib
import sys
from types import ModuleType
from typing import List, Optional

# name -> module; a new command is one row here.
COMMANDS = {
    'train': 'sscma.cli.train',
    'test': 'sscma.cli.test',
    'export': 'sscma.cli.export',
    'split': 'sscma.cli.dataset_split',
    'transfer-learn': 'sscma.cli.transfer_learn',
    'predict': 'sscma.cli.predict',
    'configs': 'sscma.cli.configs',
    'prune': 'sscma.cli.prune',
    'lr-find': 'sscma.cli.lr_find',
    'tune': 'sscma.cli.tune',
    'benchmark': 'sscma.cli.benchmark',
}


def add_model_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """``[CONFIG] MODEL``: a model file alone (its config travels inside it) or a config before it."""
    parser.add_argument('config', metavar='[CONFIG]', help='the config the model was made with (a file or a packaged '
                        'name, `sscma configs`); leave it out to use the config saved in MODEL')
    parser.add_argument('model', nargs='?', metavar='MODEL', help=what)


def model_and_config(args: argparse.Namespace):
    """``(config file, model file, options)`` from ``[CONFIG] MODEL`` and ``--cfg-options``
    (:func:`sscma.apis.model_config.resolve_model_config`)."""
    import os.path as osp

    from sscma.apis.model_config import resolve_model_config
    config, model = (None, args.config) if args.model is None else (args.config, args.model)
    if config is None and (model.endswith('.py') or not osp.isfile(model)):
        from sscma.utils import ConfigError
        from sscma.utils.packaged_configs import find_config
        try:
            find_config(model)
        except ConfigError:
            pass
        else:  # a config alone: the model file was forgotten
            raise ConfigError(f'{model} is a config; give the model file after it: CONFIG MODEL (or the model alone)')
    if config is not None and not osp.isfile(model):  # the command checks its config first, then says so
        return config, model, dict(args.cfg_options)
    config, options = resolve_model_config(config, model, args.cfg_options)
    return config, model, options


def command_module(name: str) -> ModuleType:
    """The module implementing command ``name`` (a key of :data:`COMMANDS`)."""
    return importlib.import_module(COMMANDS[name])


def build_parser(name: str, prog: Optional[str] = None) -> argparse.ArgumentParser:
    """The argument parser of command ``name``; ``prog`` is how usage lines name it."""
    module = command_module(name)
    parser = argparse.ArgumentParser(prog=prog, description=module.DESCRIPTION)
    module.add_arguments(parser)
    return parser


def run_command(name: str, argv: Optional[List[str]] = None, prog: Optional[str] = None) -> None:
    """Parse ``argv`` (default: ``sys.argv[1:]``) for command ``name`` and run it; user errors end in one line."""
    from sscma.utils import run_cli
    args = build_parser(name, prog).parse_args(argv)
    run_cli(lambda: command_module(name).main(args))


def _usage() -> str:
    width = max(map(len, COMMANDS))
    rows = [f'  {name:<{width}}  {command_module(name).DESCRIPTION}' for name in COMMANDS]
    return ('usage: sscma COMMAND [ARGS ...]   (sscma COMMAND --help for its arguments)\n\ncommands:\n' +
            '\n'.join(rows) + '\n')


def main(argv: Optional[List[str]] = None) -> None:
    """``sscma COMMAND ...`` (the console script)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ('-h', '--help'):
        print(_usage(), end='')
        return
    name = argv[0]
    if name not in COMMANDS:
        sys.exit(f'sscma: unknown command {name!r}; commands: {", ".join(COMMANDS)}')
    run_command(name, argv[1:], prog=f'sscma {name}')
