"""Hyperparameter search with Optuna, each trial a real training run, optionally within a board's limits.

    python tools/tune.py CONFIG --cfg-options data_root=... [--budget 10m] [--trials N] [--device BOARD]

Writes the leaderboard, a Pareto plot and ``best_config.py`` to ``work_dirs/<config name>_tune``; start the
same command again to go on after a kill. Logic: ``sscma/apis/tune.py``.
"""
import sscma  # noqa: F401  (sets up protobuf for ppq before anything imports it)
from sscma.cli import run_command

if __name__ == '__main__':
    run_command('tune')  # the same as `sscma tune` (sscma/cli/tune.py)
