"""Write a classification benchmark suite: the objects of the detection suite, cropped into class folders.

    python tools/benchmarks/make_crop_suite.py SUITE OUT [--margin 0.25] [--per-class 150] [--side 64]

For every dataset of ``SUITE`` (written by ``make_suite.py``) with two classes or more, each labelled box,
grown by ``--margin`` of its size on each side (clipped to the image) and resized to ``--side`` px, goes to
``OUT/<dataset>/{training,validation,test}/<class>/`` (the Sony AITRIOS layout ``ImageFolderDataset`` reads),
the split of the image it came from kept, so crops of one picture region never reach two splits. At most
``--per-class`` crops per class and split (the first ones, in file order: deterministic); ``labels.json``
keeps the detection set's class ids. Plus ``lfw_faces``:
scikit-image's ``lfw_subset`` (100 faces, 100 non-faces, 25x25 gray) split 60 / 20 / 20 by a fixed seed.
``OUT/suite.json`` lists them in the shape ``suite.py`` reads, so a classification config is judged with
``python tools/benchmarks/suite.py classification/mobilenetv2_0.35_digits --suite OUT --no-export``.
"""
import argparse
import json
import os
import os.path as osp
import warnings
from typing import Dict, List

import cv2
import numpy as np

from sscma.utils import run_cli

SPLITS = {'train': 'training', 'valid': 'validation', 'test': 'test'}


def crop(image: np.ndarray, box, margin: float, side: int) -> np.ndarray:
    x0, y0, x1, y1 = box
    mx, my = (x1 - x0) * margin, (y1 - y0) * margin
    h, w = image.shape[:2]
    xa, ya = int(max(0, np.floor(x0 - mx))), int(max(0, np.floor(y0 - my)))
    xb, yb = int(min(w, np.ceil(x1 + mx))), int(min(h, np.ceil(y1 + my)))
    return cv2.resize(image[ya:max(yb, ya + 1), xa:max(xb, xa + 1)], (side, side), interpolation=cv2.INTER_AREA)


def write_crops(entry: Dict, out: str, margin: float, per_class: int, side: int) -> Dict[str, int]:
    from sscma.datasets.detection_dataset import load_detection_split
    counts = {}
    for split, folder in SPLITS.items():
        _, names, records, _ = load_detection_split(entry['data_root'], split)
        taken = {n: 0 for n in names}
        for r in records:
            image = cv2.imread(r['img_path'])
            for i, inst in enumerate(r['instances']):
                label = inst['label']
                if inst.get('ignore_flag') or taken[label] >= per_class:
                    continue
                taken[label] += 1
                path = osp.join(out, folder, label, f'{osp.splitext(osp.basename(r["img_path"]))[0]}_{i}.png')
                os.makedirs(osp.dirname(path), exist_ok=True)
                cv2.imwrite(path, crop(image, inst['bbox'], margin, side))
        counts[split] = sum(taken.values())
    with open(osp.join(out, 'labels.json'), 'w') as fh:  # the detection set's class ids, not folder order
        json.dump({n: k for k, n in enumerate(names)}, fh)
    return counts


def write_lfw(out: str) -> Dict[str, int]:
    from skimage import data
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        faces = data.lfw_subset()
    labels = np.r_[np.ones(100), np.zeros(100)].astype(int)
    order = np.random.default_rng(0).permutation(len(faces))
    bounds = {'train': order[:120], 'valid': order[120:160], 'test': order[160:]}
    for split, idx in bounds.items():
        for i in idx:
            path = osp.join(out, SPLITS[split], ['non_face', 'face'][labels[i]], f'{i:03d}.png')
            os.makedirs(osp.dirname(path), exist_ok=True)
            cv2.imwrite(path, (faces[i] * 255).round().astype(np.uint8))
    with open(osp.join(out, 'labels.json'), 'w') as fh:
        json.dump({'face': 0, 'non_face': 1}, fh)
    return {s: len(v) for s, v in bounds.items()}


def make_crop_suite(suite: str, out: str, margin: float, per_class: int, side: int) -> List[Dict]:
    entries = []
    for entry in json.load(open(osp.join(suite, 'suite.json'))):
        if len(entry['classes']) < 2:
            continue
        root = osp.join(out, entry['name'])
        counts = write_crops(entry, root, margin, per_class, side)
        entries.append(dict(name=entry['name'], data_root=root, layout='class folders', classes=entry['classes'],
                            images=counts, image_hw=[[side, side]],
                            labels=f'crops of the boxes of {entry["name"]} ({margin:g} margin), {side}x{side}'))
    root = osp.join(out, 'lfw_faces')
    entries.append(dict(name='lfw_faces', data_root=root, layout='class folders', classes=['face', 'non_face'],
                        images=write_lfw(root), image_hw=[[25, 25]],
                        labels="scikit-image's lfw_subset, 100 faces and 100 non-faces, 25x25 gray"))
    with open(osp.join(out, 'suite.json'), 'w') as fh:
        json.dump(entries, fh, indent=2)
    for e in entries:
        print(f'{e["name"]}: {len(e["classes"])} classes, {e["images"]}')
    return entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('suite', help='folder written by make_suite.py')
    parser.add_argument('out', help='folder for the class-folder datasets and suite.json')
    parser.add_argument('--margin', type=float, default=0.25, help='context around each box, times its size')
    parser.add_argument('--per-class', type=int, default=150, help='most crops per class and split')
    parser.add_argument('--side', type=int, default=64, help='crop size in pixels')
    args = parser.parse_args()
    make_crop_suite(args.suite, args.out, args.margin, args.per_class, args.side)


if __name__ == '__main__':
    run_cli(main)
