"""Re-split a dataset: ``python tools/dataset_split.py SRC OUT [--ratios 0.7 0.15 0.15] [--seed 0]``.

SRC is a class-folder dataset (``<class>/*.jpg`` or an existing training/validation/test layout), a COCO
source (a ``.json`` file, a Roboflow export, a COCO folder), a YOLO export (Ultralytics or Roboflow) or a
Pascal VOC dataset (VOC2007/2012, labelImg, CVAT); its splits are merged and split again, stratified by
class, with identical files (same sha1) kept in the same split, and written in the format they came in.
OUT must be new or empty.
"""
import sscma  # noqa: F401  (sets up protobuf for ppq before anything imports it)
from sscma.cli import run_command

if __name__ == '__main__':
    run_command('split')  # the same as `sscma split` (sscma/cli/dataset_split.py)
