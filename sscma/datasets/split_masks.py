"""Segmentation mask layouts in the format table: how each is recognised and re-split.

- mmsegmentation mask PNGs: ``img_dir/[<split>/]`` + ``ann_dir/[<split>/]<stem>.png`` + ``classes.txt``;
- Pascal VOC / CVAT "Segmentation mask 1.1": ``JPEGImages/`` + ``SegmentationClass/<stem>.png`` +
  ``ImageSets/Segmentation/<split>.txt`` + ``labelmap.txt`` (or ``classes.txt``).

The splitter keeps each image with its mask, puts identical images in one split, and copies the class file;
masks are not read or changed (``SegmentationDataset`` reads them). YOLO-seg and COCO polygon exports are split
by the YOLO and COCO entries, which copy the label lines and annotations as they are.
"""
import os
import os.path as osp
from typing import List, Optional, Tuple

from sscma.utils.errors import DatasetError

from .image_folder import IMG_EXTENSIONS
from .split_common import YOLO_SPLITS, SplitOutput, SplitReport, assign_groups, hash_groups

CLASS_FILES = ('classes.txt', 'labelmap.txt')


def mask_png_layout(root: str) -> Optional[str]:
    """One line naming an mmsegmentation mask-PNG layout at ``root``; None if it is not one."""
    if not (osp.isdir(osp.join(root, 'img_dir')) and osp.isdir(osp.join(root, 'ann_dir'))):
        return None
    splits = sorted(d for d in os.listdir(osp.join(root, 'img_dir')) if osp.isdir(osp.join(root, 'img_dir', d)))
    where = f'img_dir/{{{",".join(splits)}}}/' if splits else 'img_dir/'
    return f'mmsegmentation mask PNGs: {where} + ann_dir/' + (' + classes.txt' if _has(root, 'classes.txt') else '')


def voc_seg_layout(root: str) -> Optional[str]:
    """One line naming a Pascal VOC / CVAT segmentation-mask layout at ``root``; None if it is not one."""
    if not (osp.isdir(osp.join(root, 'JPEGImages')) and osp.isdir(osp.join(root, 'SegmentationClass'))):
        return None
    files = [f for f in CLASS_FILES if _has(root, f)]
    return 'Pascal VOC / CVAT segmentation masks: JPEGImages/ + SegmentationClass/' + ''.join(f' + {f}' for f in files)


def _has(root: str, name: str) -> bool:
    return osp.isfile(osp.join(root, name))


def _class_file(src: str, names: Tuple[str, ...]) -> str:
    for name in names:
        if _has(src, name):
            return osp.join(src, name)
    raise DatasetError(f'{src}: no {" or ".join(names)} (the class names of the masks, in index order)')


def _mmseg_pairs(src: str) -> List[Tuple[str, str]]:
    """``(image, mask)`` of every image under ``img_dir/`` (any split folders), its mask at the same place
    under ``ann_dir/``."""
    img_root, ann_root = osp.join(src, 'img_dir'), osp.join(src, 'ann_dir')
    pairs = []
    for folder, _, files in sorted(os.walk(img_root)):
        rel = osp.relpath(folder, img_root)
        for f in sorted(files):
            if not f.lower().endswith(IMG_EXTENSIONS):
                continue
            mask = osp.normpath(osp.join(ann_root, rel, osp.splitext(f)[0] + '.png'))
            if not osp.isfile(mask):
                raise DatasetError(f'{osp.join(folder, f)} has no mask: expected {mask}')
            pairs.append((osp.join(folder, f), mask))
    if not pairs:
        raise DatasetError(f'no images ({", ".join(IMG_EXTENSIONS)}) under {img_root}')
    return pairs


def _voc_pairs(src: str) -> List[Tuple[str, str]]:
    """``(image, mask)`` of every ``SegmentationClass/<stem>.png`` with its ``JPEGImages/<stem>.*``."""
    img_dir, ann_dir = osp.join(src, 'JPEGImages'), osp.join(src, 'SegmentationClass')
    by_stem = {osp.splitext(f)[0]: f for f in os.listdir(img_dir) if f.lower().endswith(IMG_EXTENSIONS)}
    pairs = []
    for f in sorted(os.listdir(ann_dir)):
        stem, ext = osp.splitext(f)
        if ext.lower() != '.png':
            continue
        if stem not in by_stem:
            raise DatasetError(f'{osp.join(ann_dir, f)} has no image: expected {img_dir}/{stem}.jpg (or another '
                               'image extension)')
        pairs.append((osp.join(img_dir, by_stem[stem]), osp.join(ann_dir, f)))
    if not pairs:
        raise DatasetError(f'no masks (.png) in {ann_dir}')
    return pairs


def _split_pairs(kind: str, pairs: List[Tuple[str, str]], out: SplitOutput, ratios, seed: int,
                 place) -> SplitReport:
    """Assign the pairs to splits (identical images together) and write each with ``place(pair, split)``."""
    groups, dupes = hash_groups([img for img, _ in pairs])
    assigned = assign_groups([('', len(g)) for g in groups], ratios, seed)
    splits = [s for s, r in zip(YOLO_SPLITS, ratios) if r > 0]
    counts = {s: 0 for s in splits}
    for g, s in zip(groups, assigned):
        for i in g:
            place(pairs[i], YOLO_SPLITS[s])
            counts[YOLO_SPLITS[s]] += 1
    return SplitReport(kind, out.out, splits, [('images (with masks)', counts)], [], len(pairs), dupes,
                       sum(len(g) > 1 for g in groups), 0)


def split_mask_pngs(src: str, out: SplitOutput, ratios, seed: int) -> SplitReport:
    """Re-split an mmsegmentation export into ``img_dir/{train,val,test}`` + ``ann_dir/...`` + ``classes.txt``."""
    classes = _class_file(src, ('classes.txt', ))
    pairs = _mmseg_pairs(src)

    def place(pair, split):
        name = out.place(pair[0], f'img_dir/{split}', unique_stem=True)
        out.place(pair[1], f'ann_dir/{split}', name=osp.splitext(name)[0] + '.png')

    report = _split_pairs('masks', pairs, out, ratios, seed, place)
    out.place(classes, '.')
    report.classes = [line.strip() for line in open(classes, encoding='utf-8') if line.strip()]
    return report


def split_voc_seg(src: str, out: SplitOutput, ratios, seed: int) -> SplitReport:
    """Re-split a Pascal VOC / CVAT segmentation export: ``JPEGImages/``, ``SegmentationClass/``,
    ``ImageSets/Segmentation/{train,val,test}.txt`` and its ``labelmap.txt`` / ``classes.txt``."""
    class_file = _class_file(src, CLASS_FILES)
    pairs = _voc_pairs(src)
    lists = {s: [] for s in YOLO_SPLITS}

    def place(pair, split):
        name = out.place(pair[0], 'JPEGImages', unique_stem=True)
        stem = osp.splitext(name)[0]
        out.place(pair[1], 'SegmentationClass', name=stem + '.png')
        lists[split].append(stem)

    report = _split_pairs('voc_seg', pairs, out, ratios, seed, place)
    for split in report.splits:
        out.write_text(f'ImageSets/Segmentation/{split}.txt', ''.join(f'{s}\n' for s in lists[split]))
    out.place(class_file, '.')
    return report
