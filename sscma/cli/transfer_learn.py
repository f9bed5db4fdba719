"""``sscma transfer-learn`` / ``tools/transfer_learn.py``: transfer learning from a Sony AITRIOS-style
``configuration.json``.

Keys: ``source_model`` (an sscma .pth; empty or absent: MobileNetV2-1.0 with ImageNet weights),
``dataset_training_dir``, ``dataset_validation_dir`` (``<class>/*.jpg``), ``batch_size``, ``input_tensor_size``
(int or [height, width]), ``epochs``, ``output_dir`` (checkpoints, logs), ``evaluate_result_dir``
(``results.json`` with top-1 and the other classification metrics). Every key is checked before training.
"""
import argparse

from sscma.utils import CfgOptionsAction

DESCRIPTION = 'Transfer learning from a configuration.json (Sony AITRIOS keys)'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('configuration', help='configuration.json')
    parser.add_argument('--config', default=None,
                        help='model/training config (default: configs/classification/mobilenetv2_1.0_transfer.py)')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, default={},
                        help='further overrides of the config, e.g. base_lr=0.001 freeze_epochs=2 workers=0')


def main(args: argparse.Namespace) -> None:
    from sscma.apis.transfer_learn import TRANSFER_CONFIG, transfer_learn
    result = transfer_learn(args.configuration, args.config or TRANSFER_CONFIG, args.cfg_options)
    print(f'top-1 {result["top1"]:.2f} % on {result.get("num_images", "?")} validation images; '
          f'model {result["checkpoint"]}; results {result["results_file"]}')
