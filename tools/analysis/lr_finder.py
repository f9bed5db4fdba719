"""Learning-rate range test: ``python tools/analysis/lr_finder.py CONFIG [--min-lr 1e-6 --max-lr 100]``.

Trains the config's model for ``--num-iters`` steps with an exponentially growing lr, stops when the loss
diverges, prints the suggested lr and writes ``lr_finder.png`` and ``lr_finder.json`` to ``--out`` (default
``work_dirs/<config name>``). No checkpoint is written.
"""
import sscma  # noqa: F401  (sets up protobuf for ppq before anything imports it)
from sscma.cli import run_command

if __name__ == '__main__':
    run_command('lr-find')  # the same as `sscma lr-find` (sscma/cli/lr_find.py)
