"""Re-split a dataset: ``python tools/dataset_split.py SRC OUT [--ratios 0.7 0.15 0.15] [--seed 0]``.

SRC is any layout of the format table (``sscma/datasets/formats.py``, docs/datasets.md): a COCO source (a
``.json`` file, a Roboflow export, COCO 2017, CVAT "COCO 1.0"), a YOLO export (Ultralytics, Roboflow, CVAT
"YOLO 1.1", a labelImg folder), a Pascal VOC dataset (VOC2007/2012, CVAT "Pascal VOC 1.1", labelImg) or class
folders (``<class>/*.jpg`` or a training/validation/test layout). The first line printed says which layout was
recognised. Its splits are merged and split again, stratified by class, with identical files (same sha1) kept
in the same split, and written in the format they came in. OUT must be new or empty.
"""
import sscma  # noqa: F401  (sets up protobuf for ppq before anything imports it)
from sscma.cli import run_command

if __name__ == '__main__':
    run_command('split')  # the same as `sscma split` (sscma/cli/dataset_split.py)
