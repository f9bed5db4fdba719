"""List the packaged configs: ``python tools/configs.py [FILTER]`` (name, task, input size, epochs, what it is).

Each is usable by name from any folder (``python tools/train.py fomo_mobnetv2``, ``sscma train fomo_mobnetv2``)
and as a base of your own config (``_base_ = ['sscma::fomo/fomo_mobnetv2.py']``).
"""
import sscma  # noqa: F401  (sets up protobuf for ppq before anything imports it)
from sscma.cli import run_command

if __name__ == '__main__':
    run_command('configs')  # the same as `sscma configs` (sscma/cli/configs.py)
