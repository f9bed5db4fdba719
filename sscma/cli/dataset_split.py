"""``sscma split`` / ``tools/dataset_split.py``: split a dataset into train/validation/test.

SRC is any layout of the format table (``sscma.datasets.formats``): a COCO source (a ``.json`` file, a Roboflow
export, a COCO 2017 folder, a CVAT "COCO 1.0" export), a YOLO dataset (Ultralytics, Roboflow, CVAT "YOLO 1.1",
a labelImg folder), a Pascal VOC dataset (VOC2007/2012, CVAT "Pascal VOC 1.1", labelImg) or class folders
(``<class>/*.jpg`` or a training/validation/test layout). The first line printed names the layout recognised;
its splits are merged and split again, stratified by class, with identical files (same sha1) kept in the same
split, and written in the format they came in. OUT must be new or empty.
"""
import argparse

DESCRIPTION = 'Split a dataset into train/validation/test, stratified, without duplicate files crossing splits'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('src', help='a dataset export (COCO, YOLO, Pascal VOC: Roboflow, CVAT, labelImg, Ultralytics), '
                        'a COCO .json or class folders')
    parser.add_argument('out', help='new output folder (class folders: Sony layout; COCO: Roboflow export; YOLO: '
                        'Ultralytics layout; VOC: VOC layout)')
    parser.add_argument('--ratios', nargs='+', type=float, default=[0.7, 0.15, 0.15],
                        help='train val [test] fractions summing to 1 (default: 0.7 0.15 0.15)')
    parser.add_argument('--seed', type=int, default=0, help='shuffling seed (default: 0)')
    parser.add_argument('--images', default=None, help='image folder of a COCO .json SRC (default: its folder)')
    parser.add_argument('--copy', action='store_true', help='always copy files (default: hard-link when possible)')


def main(args: argparse.Namespace) -> None:
    from sscma.datasets.formats import format_named
    from sscma.datasets.split import split_dataset
    report = split_dataset(args.src, args.out, args.ratios, args.seed, images_dir=args.images, link=not args.copy)
    print(report.read_line())
    print(f'{report.num_files} images from {args.src} -> {report.out} ({format_named(report.kind).writes})')
    print(report.table())
    print(f'duplicates: {report.duplicates} files identical to another one ({report.duplicate_groups} sets), '
          'each set kept in one split')
    if report.conflicting_groups:
        print(f'warning: {report.conflicting_groups} sets of identical files carry different classes')
