"""Re-split a dataset into train / validation / test, stratified, with duplicate files kept together.

The source is recognised by the format table (:mod:`.formats`: COCO json, YOLO txt, Pascal VOC xml, class
folders, tried in that order), its splits are merged, and it is written back in its format:

- **class folders**: ``SRC/<class>/*.jpg``, or a split layout (``training/``, ``validation/``, ``test/`` or
  their aliases). The result is the Sony layout ``OUT/{training,validation,test}/<class>/`` plus
  ``OUT/labels.json``. A folder holding ``images/``, ``labels/`` or ``annotations/`` is never class folders.
- **COCO json**: a COCO file (images beside it, or in ``images_dir``), a Roboflow export, a COCO 2017 folder or a
  CVAT "COCO 1.0" export (``annotations/instances_default.json`` + ``images/``). The result is a Roboflow export
  ``OUT/{train,valid,test}/`` with ``_annotations.coco.json`` beside the images. Category ids are kept; image
  and annotation ids are renumbered per split. An image's stratum is its dominant class (most objects; ties go
  to the lowest category id); images without objects form their own stratum.
- **YOLO txt**: Ultralytics or Roboflow (``data.yaml``, or ``images``/``labels`` folders with a ``classes.txt``),
  CVAT "YOLO 1.1" (``obj.data``) or a labelImg folder (images, ``.txt`` and ``classes.txt`` side by side). The
  result is the Ultralytics layout ``OUT/data.yaml`` + ``OUT/images/{train,val,test}/`` +
  ``OUT/labels/{train,val,test}/``; label files are kept as they are.
- **Pascal VOC xml**: VOC2007/2012, split folders of xml + images, or one set (labelImg, CVAT "Pascal VOC
  1.1"). The result is ``OUT/Annotations/``, ``OUT/JPEGImages/``, ``OUT/ImageSets/Main/{train,val,test}.txt``
  and ``OUT/labels.txt``.

Files with identical content (sha1 of the bytes) are grouped and always land in the same split, so an
image copied under two names cannot leak from training into validation. Files are hard-linked when
possible, else copied, into a temporary folder next to ``OUT`` that is renamed to ``OUT`` when complete.
"""
import os
import os.path as osp
from typing import Optional, Sequence

from sscma.utils.errors import DatasetError

from .formats import recognise
from .split_boxes import split_coco
from .split_common import SplitOutput, SplitReport, check_ratios


def split_dataset(src: str, out: str, ratios: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0,
                  images_dir: Optional[str] = None, link: bool = True) -> SplitReport:
    """Split ``src`` into ``out`` in the format ``src`` is in (see the module docstring for the layouts).

    Args:
        src (str): A dataset folder in any layout of :data:`~.formats.DATASET_FORMATS`, or a COCO json file.
        out (str): New output folder; it must not exist or be empty.
        ratios (Sequence[float]): Fractions for train, validation and (optionally) test; they sum to 1.
            A zero fraction leaves that split out.
        seed (int): Shuffling seed; the same inputs and seed give the same split.
        images_dir (str, optional): Image folder of a COCO json file given as ``src`` (default: its folder).
        link (bool): Hard-link files when the file system allows it (else copy). Defaults to True.

    Returns:
        SplitReport: What was read (:attr:`~.split_common.SplitReport.source`) and written.
    """
    ratios = check_ratios(ratios)
    if not osp.exists(src):
        raise DatasetError(f'source {src} does not exist')
    src_abs, out_abs = osp.realpath(src), osp.realpath(out)
    if out_abs == src_abs or out_abs.startswith(src_abs.rstrip(os.sep) + os.sep):
        raise DatasetError(f'output {out} is inside the source {src}; write it elsewhere')
    if osp.isfile(src) and not src.lower().endswith('.json'):
        raise DatasetError(f'source {src} is a file but not a COCO .json')
    if images_dir and not osp.isfile(src):
        raise DatasetError(f'images_dir={images_dir} is for a COCO .json source; {src} is a folder, whose layout '
                           'says where its images are')
    fmt, found = recognise(src)
    writer = SplitOutput(out, link=link)
    try:
        report = split_coco(src, writer, ratios, seed, images_dir) if images_dir else \
            fmt.write(src, writer, ratios, seed)
        writer.commit()
    except BaseException:
        writer.discard()
        raise
    report.source = found
    return report
