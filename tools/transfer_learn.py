"""Transfer learning from a Sony AITRIOS-style ``configuration.json``.

    python tools/transfer_learn.py configuration.json [--config CONFIG] [--cfg-options k=v ...]

Keys: ``source_model`` (an sscma .pth; empty or absent: MobileNetV2-1.0 with ImageNet weights),
``dataset_training_dir``, ``dataset_validation_dir`` (``<class>/*.jpg``), ``batch_size``, ``input_tensor_size``
(int or [height, width]), ``epochs``, ``output_dir`` (checkpoints, logs), ``evaluate_result_dir``
(``results.json`` with top-1 and the other classification metrics). Every key is checked before training.
"""
import argparse

import sscma  # noqa: F401
from sscma.utils import CfgOptionsAction, run_cli


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Transfer learning from a configuration.json (Sony AITRIOS keys)')
    parser.add_argument('configuration', help='configuration.json')
    parser.add_argument('--config', default=None,
                        help='model/training config (default: configs/classification/mobilenetv2_1.0_transfer.py)')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, default={},
                        help='further overrides of the config, e.g. lr=0.001 freeze_epochs=2 workers=0')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    from sscma.apis.transfer_learn import TRANSFER_CONFIG, transfer_learn
    result = transfer_learn(args.configuration, args.config or TRANSFER_CONFIG, args.cfg_options)
    print(f'top-1 {result["top1"]:.2f} % on {result.get("num_images", "?")} validation images; '
          f'model {result["checkpoint"]}; results {result["results_file"]}')


if __name__ == '__main__':
    run_cli(main)
