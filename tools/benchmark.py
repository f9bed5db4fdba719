"""Every export format of a model side by side: size, test metric against PyTorch, latency (like `yolo benchmark`).

    python tools/benchmark.py [CONFIG] CHECKPOINT [--targets ...] [--precisions ...] [--device BOARD ...]

Takes the arguments of ``tools/export.py`` and runs the same export. Logic: ``sscma/cli/benchmark.py``.
"""
import sscma  # noqa: F401  (sets up protobuf for ppq before anything imports it)
from sscma.cli import run_command

if __name__ == '__main__':
    run_command('benchmark')  # the same as `sscma benchmark` (sscma/cli/benchmark.py)
