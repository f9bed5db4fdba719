"""Re-split a dataset into train / validation / test, stratified, with duplicate files kept together.

Two kinds of source are understood:

- **class folders**: ``SRC/<class>/*.jpg``, or a split layout (``training/``, ``validation/``, ``test/`` or
  their aliases) whose splits are merged first. The result is the Sony layout
  ``OUT/{training,validation,test}/<class>/`` plus ``OUT/labels.json``.
- **COCO json**: a COCO file (images beside it, or in ``images_dir``), a Roboflow export
  (``SRC/{train,valid,test}/_annotations.coco.json``) or a plain COCO folder (``annotations/instances_*.json``)
  whose splits are merged first. The result is a Roboflow export ``OUT/{train,valid,test}/`` with
  ``_annotations.coco.json`` beside the images. Category ids are kept; image and annotation ids are
  renumbered per split. An image's stratum is its dominant class (most objects; ties go to the lowest
  category id); images without objects form their own stratum.
- **YOLO txt**: an Ultralytics or Roboflow export (``data.yaml``, or ``images``/``labels`` folders with a
  ``classes.txt``) whose splits are merged first. The result is the Ultralytics layout ``OUT/data.yaml`` +
  ``OUT/images/{train,val,test}/`` + ``OUT/labels/{train,val,test}/``; label files are kept as they are.
- **Pascal VOC xml**: VOC2007/2012, split folders of xml + images, or one set (labelImg, CVAT). The result is
  ``OUT/Annotations/``, ``OUT/JPEGImages/``, ``OUT/ImageSets/Main/{train,val,test}.txt`` and ``OUT/labels.txt``.

Files with identical content (sha1 of the bytes) are grouped and always land in the same split, so an
image copied under two names cannot leak from training into validation. Files are hard-linked when
possible, else copied, into a temporary folder next to ``OUT`` that is renamed to ``OUT`` when complete.
"""
import os
import os.path as osp
from collections import Counter, defaultdict
from typing import Any, Dict, Hashable, List, Optional, Sequence, Tuple

from sscma.utils.errors import DatasetError

from .coco_detection import ROBOFLOW_ANN, find_coco_split, load_coco_json
from .image_folder import IMG_EXTENSIONS, SPLIT_ALIASES, _class_dirs, read_labels_json
from .split_boxes import _split_boxes, _voc_sources, _yolo_sources
from .split_common import (COCO_SPLITS, EMPTY_STRATUM, FOLDER_SPLITS, YOLO_SPLITS, SplitReport,  # noqa: F401
                           _hash_groups, _majority, _Output, assign_groups, check_ratios, file_sha1, split_targets)
from .voc_detection import VocLayout
from .yolo_detection import is_yolo_root


# ----------------------------------------------------------------------------------------------- folders
def _folder_sources(src: str) -> Tuple[List[str], List[Tuple[str, str]]]:
    """Return the class names and ``(file, class)`` of every image in a class-folder source."""
    split_names = {n for names in SPLIT_ALIASES.values() for n in names}
    subdirs = _class_dirs(src)
    split_dirs = [d for d in subdirs if d in split_names]
    if split_dirs:
        others = sorted(set(subdirs) - set(split_dirs))
        if others:
            raise DatasetError(f'{src} mixes split folders {split_dirs} with other folders {others}; give either '
                               'class folders or a training/validation/test layout')
        roots = [osp.join(src, d) for d in split_dirs]
    else:
        roots = [src]
    items = []
    for root in roots:
        for cls in _class_dirs(root):
            folder = osp.join(root, cls)
            items += [(osp.join(folder, f), cls) for f in sorted(os.listdir(folder))
                      if f.lower().endswith(IMG_EXTENSIONS) and osp.isfile(osp.join(folder, f))]
    found = sorted({c for _, c in items})
    labels = osp.join(src, 'labels.json')
    if osp.isfile(labels):
        classes = read_labels_json(labels)
        unknown = sorted(set(found) - set(classes))
        if unknown:
            raise DatasetError(f'class folders {unknown} under {src} are not in {labels} (it lists {classes})')
    else:
        classes = found
    if not items:
        raise DatasetError(f'no images ({", ".join(IMG_EXTENSIONS)}) in class folders under {src} (expected '
                           f'{src}/<class>/*.jpg or {src}/training/<class>/*.jpg)')
    return classes, items


def _split_folders(src: str, out: _Output, ratios, seed: int) -> SplitReport:
    classes, items = _folder_sources(src)
    groups, dupes = _hash_groups([p for p, _ in items])
    conflicts = sum(len({items[i][1] for i in g}) > 1 for g in groups)
    assigned = assign_groups([(_majority([items[i][1] for i in g]), len(g)) for g in groups], ratios, seed)
    counts: Dict[str, Counter] = defaultdict(Counter)
    for g, s in zip(groups, assigned):
        split = FOLDER_SPLITS[s]
        for i in g:
            path, cls = items[i]
            out.place(path, osp.join(split, cls))
            counts[cls][split] += 1
    out.write_json('labels.json', {c: i for i, c in enumerate(classes)})
    splits = [s for s, r in zip(FOLDER_SPLITS, ratios) if r > 0]
    rows = [(c, dict(counts[c])) for c in classes]
    rows.append(('total', {s: sum(counts[c][s] for c in classes) for s in splits}))
    return SplitReport('folder', out.out, splits, rows, classes, len(items), dupes,
                       sum(len(g) > 1 for g in groups), conflicts)


# -------------------------------------------------------------------------------------------------- COCO
def _coco_sources(src: str, images_dir: Optional[str]) -> List[Tuple[str, str]]:
    """``(annotation json, image folder)`` pairs of a COCO source (a json file, or a folder of splits)."""
    if osp.isfile(src):
        return [(src, images_dir or osp.dirname(src))]
    if osp.isfile(osp.join(src, ROBOFLOW_ANN)):
        return [(osp.join(src, ROBOFLOW_ANN), images_dir or src)]
    pairs = []
    for split in ('train', 'valid', 'test'):
        try:
            pair = find_coco_split(src, split)
        except DatasetError:
            continue
        if pair not in pairs:
            pairs.append(pair)
    return pairs


def _split_coco(sources: List[Tuple[str, str]], out: _Output, ratios, seed: int) -> SplitReport:
    categories: Dict[int, Dict] = {}
    info, licenses = None, None
    images: List[Tuple[str, Dict, List[Dict]]] = []  # (file, image record, its annotations)
    for ann_file, img_dir in sources:
        data = load_coco_json(ann_file)
        info = data.get('info', {}) if info is None else info
        licenses = data.get('licenses', []) if licenses is None else licenses
        for cat in data['categories']:
            known = categories.setdefault(cat['id'], cat)
            if known['name'] != cat['name']:
                raise DatasetError(f'{ann_file}: category id {cat["id"]} is "{cat["name"]}" but "{known["name"]}" '
                                   'in another split; the splits cannot be merged')
        by_image: Dict[Any, List[Dict]] = defaultdict(list)
        for ann in data['annotations']:
            by_image[ann['image_id']].append(ann)
        missing = []
        for img in data['images']:
            path = osp.join(img_dir, img['file_name'])
            if not osp.isfile(path):
                missing.append(img['file_name'])
            images.append((path, img, by_image.get(img['id'], [])))
        unknown = sorted({a['category_id'] for a in data['annotations']} - set(categories), key=str)
        if unknown:
            raise DatasetError(f'{ann_file}: annotations use category ids {unknown} that "categories" does not list')
        if missing:
            raise DatasetError(f'{ann_file}: {len(missing)} listed images are not in {img_dir}, e.g. {missing[:3]}')
    if not images:
        raise DatasetError(f'no images listed in {[a for a, _ in sources]}')

    def stratum(anns: List[Dict]) -> Hashable:
        ids = [a['category_id'] for a in anns]
        return _majority(ids) if ids else EMPTY_STRATUM

    groups, dupes = _hash_groups([p for p, _, _ in images])
    conflicts = sum(len({stratum(images[i][2]) for i in g}) > 1 for g in groups)
    assigned = assign_groups([(_majority([stratum(images[i][2]) for i in g]), len(g)) for g in groups], ratios,
                             seed)
    per_split: Dict[str, List[int]] = defaultdict(list)
    for g, s in zip(groups, assigned):
        per_split[COCO_SPLITS[s]] += g
    cats = list(categories.values())  # the source's order
    splits = [s for s, r in zip(COCO_SPLITS, ratios) if r > 0]
    n_images, n_empty, n_objects = Counter(), Counter(), defaultdict(Counter)
    for split in splits:
        new_images, new_anns = [], []
        for i in sorted(per_split[split]):
            path, img, anns = images[i]
            name = out.place(path, split)
            new_images.append(dict(img, id=len(new_images), file_name=name))
            for ann in anns:
                new_anns.append(dict(ann, id=len(new_anns) + 1, image_id=new_images[-1]['id']))
                n_objects[ann['category_id']][split] += 1
            n_images[split] += 1
            n_empty[split] += int(not anns)
        out.write_json(osp.join(split, ROBOFLOW_ANN), dict(info=info, licenses=licenses, categories=cats,
                                                            images=new_images, annotations=new_anns))
    rows = [('images', dict(n_images)), (f'images {EMPTY_STRATUM}', dict(n_empty))]
    rows += [(f'{c["name"]} (id {c["id"]}) objects', dict(n_objects[c['id']])) for c in cats if n_objects[c['id']]]
    return SplitReport('coco', out.out, splits, rows, [c['name'] for c in cats], len(images), dupes,
                       sum(len(g) > 1 for g in groups), conflicts)


def split_dataset(src: str, out: str, ratios: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0,
                  images_dir: Optional[str] = None, link: bool = True) -> SplitReport:
    """Split ``src`` into ``out`` (see the module docstring for the layouts).

    Args:
        src (str): Class-folder dataset, COCO json file, Roboflow export, COCO folder, YOLO or VOC dataset.
        out (str): New output folder; it must not exist or be empty.
        ratios (Sequence[float]): Fractions for train, validation and (optionally) test; they sum to 1.
            A zero fraction leaves that split out.
        seed (int): Shuffling seed; the same inputs and seed give the same split.
        images_dir (str, optional): Image folder of a COCO json given as ``src`` (default: its folder).
        link (bool): Hard-link files when the file system allows it (else copy). Defaults to True.
    """
    ratios = check_ratios(ratios)
    if not osp.exists(src):
        raise DatasetError(f'source {src} does not exist')
    src_abs, out_abs = osp.realpath(src), osp.realpath(out)
    if out_abs == src_abs or out_abs.startswith(src_abs.rstrip(os.sep) + os.sep):
        raise DatasetError(f'output {out} is inside the source {src}; write it elsewhere')
    if osp.isfile(src) and not src.lower().endswith('.json'):
        raise DatasetError(f'source {src} is a file but not a COCO .json')
    coco = _coco_sources(src, images_dir)  # empty: a folder without COCO json
    boxes = None
    if not coco and is_yolo_root(src):
        boxes = ('yolo', *_yolo_sources(src))
    elif not coco and VocLayout(src).kind is not None:
        boxes = ('voc', *_voc_sources(src))
    writer = _Output(out, link=link)
    try:
        if coco:
            report = _split_coco(coco, writer, ratios, seed)
        elif boxes:
            report = _split_boxes(*boxes, writer, ratios, seed)
        else:
            report = _split_folders(src, writer, ratios, seed)
        writer.commit()
    except BaseException:
        writer.discard()
        raise
    return report

