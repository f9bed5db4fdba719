"""Train a model from a config: ``python tools/train.py CONFIG [--work-dir DIR] [--cfg-options k=v ...]``."""
import sscma  # noqa: F401  (sets up protobuf for ppq before anything imports it)
from sscma.cli import run_command

if __name__ == '__main__':
    run_command('train')  # the same as `sscma train` (sscma/cli/train.py)
