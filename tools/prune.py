"""Structured channel pruning + fine-tuning of a trained model.

    python tools/prune.py [CONFIG] CHECKPOINT (--ratio R | --target-macs M) [--finetune-epochs N] [--iterative K]
                          [--work-dir DIR] [--cfg-options k=v ...]

Writes ``DIR/config/<config name>_pruned.py`` (the config of the pruned model: the original + its pruned
widths), the fine-tuned checkpoints (each carrying that config) and ``prune_report.md`` (float vs pruned:
params, MACs, latency, test metrics). Logic: ``sscma/apis/prune.py``.
"""
import sscma  # noqa: F401  (sets up protobuf for ppq before anything imports it)
from sscma.cli import run_command

if __name__ == '__main__':
    run_command('prune')  # the same as `sscma prune` (sscma/cli/prune.py)
