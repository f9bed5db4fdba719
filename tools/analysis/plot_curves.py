"""Plot training curves: ``python tools/analysis/plot_curves.py WORK_DIR_OR_SCALARS_JSON [--out PNG]``.

Given a work dir, the newest ``<timestamp>/vis_data/scalars.json`` in it is used; the figure (losses and
lr by iteration, validation metrics by epoch) goes to ``--out`` (default: ``training_curves.png`` in the
work dir, or beside the given json).
"""
import argparse
import glob
import os
import os.path as osp

import sscma  # noqa: F401
from sscma.utils import SSCMAError, run_cli


def find_scalars_json(path: str) -> str:
    """The scalars log to plot: ``path`` itself, or the newest ``*/vis_data/scalars.json`` under it."""
    if osp.isfile(path):
        return path
    if not osp.isdir(path):
        raise SSCMAError(f'{path} does not exist (give a work dir or a vis_data/scalars.json)')
    found = [p for pattern in ('scalars.json', 'vis_data/scalars.json', '*/vis_data/scalars.json')
             for p in glob.glob(osp.join(glob.escape(path), pattern))]
    if not found:
        raise SSCMAError(f'no training log in {path}: expected {path}/<timestamp>/vis_data/scalars.json '
                         '(written by LocalVisBackend once training has logged)')
    return max(found, key=lambda p: (osp.getmtime(p), p))


def main() -> None:
    parser = argparse.ArgumentParser(description='Plot losses, lr and validation metrics of a training run')
    parser.add_argument('path', help='work dir (newest run is used) or a scalars.json')
    parser.add_argument('--out', help='output PNG (default: training_curves.png in the work dir)')
    args = parser.parse_args()
    from sscma.visualization import plot_training_curves
    scalars = find_scalars_json(args.path)
    out = args.out or osp.join(args.path if osp.isdir(args.path) else osp.dirname(scalars), 'training_curves.png')
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    if plot_training_curves(scalars, out) is None:
        raise SSCMAError(f'{scalars} holds no loss or validation metric to plot')
    print(f'{scalars} -> {out}')


if __name__ == '__main__':
    run_cli(main)
