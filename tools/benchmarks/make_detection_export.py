"""Write a small Roboflow-style COCO export at any image size, from the built-in coin/face generator.

    python tools/benchmarks/make_detection_export.py OUT --size 160x120 --counts 120 40 40 --seed 7

Images are composed square at the larger side (objects 12-28 px, empty images, objects cut by the border,
as the built-in set) with other seeds than the built-in set, then resized to ``--size``: a non-square size
squeezes one axis, boxes included. Used by the benchmarks to measure on images that are not the network's
input size.
"""
import argparse
import json
import os.path as osp
from pathlib import Path

import cv2

from sscma.datasets.builtin import _Sources, write_fomo_split
from sscma.utils import run_cli


def resize_split(folder: Path, w: int, h: int) -> None:
    """Resize every image of a split and its annotation boxes from square to ``w`` x ``h``."""
    ann_file = folder / '_annotations.coco.json'
    data = json.loads(ann_file.read_text())
    scale = {img['id']: (w / img['width'], h / img['height']) for img in data['images']}
    for img in data['images']:
        path = str(folder / img['file_name'])
        cv2.imwrite(path, cv2.resize(cv2.imread(path), (w, h), interpolation=cv2.INTER_AREA),
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
        img.update(width=w, height=h)
    for ann in data['annotations']:
        sx, sy = scale[ann['image_id']]
        x, y, bw, bh = ann['bbox']
        ann['bbox'] = [x * sx, y * sy, bw * sx, bh * sy]
        ann['area'] = bw * sx * bh * sy
    ann_file.write_text(json.dumps(data))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out')
    parser.add_argument('--size', default='128x128', help='WxH of the images')
    parser.add_argument('--counts', type=int, nargs=3, default=(120, 40, 40), metavar=('TRAIN', 'VALID', 'TEST'))
    parser.add_argument('--seed', type=int, default=7)
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.lower().split('x'))
    src = _Sources()
    for k, (split, count) in enumerate(zip(('train', 'valid', 'test'), args.counts)):
        folder = Path(args.out) / split
        stats = write_fomo_split(folder, split, count, seed=1000 * args.seed + k, src=src, size=max(w, h))
        if (w, h) != (max(w, h), ) * 2:
            resize_split(folder, w, h)
        print(f'{osp.join(args.out, split)}: {stats}')


if __name__ == '__main__':
    run_cli(main)
