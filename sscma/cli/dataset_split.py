"""``sscma split`` / ``tools/dataset_split.py``: split a dataset into train/validation/test.

SRC is a class-folder dataset (``<class>/*.jpg`` or an existing training/validation/test layout), a COCO
source (a ``.json`` file, a Roboflow export, a COCO folder), a YOLO export (Ultralytics or Roboflow) or a
Pascal VOC dataset (VOC2007/2012, labelImg, CVAT); its splits are merged and split again, stratified by
class, with identical files (same sha1) kept in the same split, and written in the format they came in.
OUT must be new or empty.
"""
import argparse

DESCRIPTION = 'Split a dataset into train/validation/test, stratified, without duplicate files crossing splits'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('src', help='class folders, a COCO .json, a Roboflow export, a COCO folder, a YOLO or a '
                        'Pascal VOC dataset')
    parser.add_argument('out', help='new output folder (class folders: Sony layout; COCO: Roboflow export; YOLO: '
                        'Ultralytics layout; VOC: VOC layout)')
    parser.add_argument('--ratios', nargs='+', type=float, default=[0.7, 0.15, 0.15],
                        help='train val [test] fractions summing to 1 (default: 0.7 0.15 0.15)')
    parser.add_argument('--seed', type=int, default=0, help='shuffling seed (default: 0)')
    parser.add_argument('--images', default=None, help='image folder of a COCO .json SRC (default: its folder)')
    parser.add_argument('--copy', action='store_true', help='always copy files (default: hard-link when possible)')


def main(args: argparse.Namespace) -> None:
    from sscma.datasets.split import split_dataset
    report = split_dataset(args.src, args.out, args.ratios, args.seed, images_dir=args.images, link=not args.copy)
    layout = {'folder': 'Sony class folders + labels.json', 'coco': 'Roboflow COCO export',
              'yolo': 'Ultralytics YOLO: data.yaml + images/ + labels/',
              'voc': 'Pascal VOC: Annotations/ + JPEGImages/ + ImageSets/Main/'}[report.kind]
    print(f'{report.num_files} images from {args.src} -> {report.out} ({layout})')
    print(report.table())
    print(f'duplicates: {report.duplicates} files identical to another one ({report.duplicate_groups} sets), '
          'each set kept in one split')
    if report.conflicting_groups:
        print(f'warning: {report.conflicting_groups} sets of identical files carry different classes')
