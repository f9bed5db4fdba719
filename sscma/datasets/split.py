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
import hashlib
import json
import os
import os.path as osp
import shutil
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Dict, Hashable, List, Optional, Sequence, Tuple

import numpy as np

from sscma.utils.errors import DatasetError

from .coco_detection import ROBOFLOW_ANN, find_coco_split, load_coco_json
from .file_checks import image_size, inside_root
from .image_folder import IMG_EXTENSIONS, SPLIT_ALIASES, _class_dirs, read_labels_json
from .voc_detection import VocLayout, parse_voc_xml, voc_class_names
from .yolo_detection import (is_yolo_root, parse_yolo_labels, yolo_label_path, yolo_split_files,
                             yolo_split_names)

FOLDER_SPLITS = ('training', 'validation', 'test')  # Sony layout
COCO_SPLITS = ('train', 'valid', 'test')  # Roboflow export
YOLO_SPLITS = ('train', 'val', 'test')  # Ultralytics; also the VOC ImageSets names
EMPTY_STRATUM = '(no objects)'


@dataclass
class SplitReport:
    """What :func:`split_dataset` wrote.

    Attributes:
        kind (str): ``'folder'``, ``'coco'``, ``'yolo'`` or ``'voc'``.
        out (str): The output folder.
        splits (list[str]): Output split folder names, in order.
        rows (list[tuple[str, dict]]): Summary table rows: a label and ``{split: count}``.
        classes (list[str]): Class names (folder, YOLO, VOC) or category names ordered by id (COCO).
        num_files (int): Source files (images) placed.
        duplicates (int): Files whose content equals an earlier file (each kept with its twin's split).
        duplicate_groups (int): Sets of identical files.
        conflicting_groups (int): Duplicate sets whose members carry different classes.
    """
    kind: str
    out: str
    splits: List[str]
    rows: List[Tuple[str, Dict[str, int]]] = field(default_factory=list)
    classes: List[str] = field(default_factory=list)
    num_files: int = 0
    duplicates: int = 0
    duplicate_groups: int = 0
    conflicting_groups: int = 0

    def table(self) -> str:
        """The per-split, per-class counts as a text table."""
        head = ['', *self.splits, 'total']
        body = [[label, *[str(counts.get(s, 0)) for s in self.splits],
                 str(sum(counts.get(s, 0) for s in self.splits))] for label, counts in self.rows]
        widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]

        def fmt(row: List[str]) -> str:
            return '  '.join([row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])])

        return '\n'.join([fmt(head), '  '.join('-' * w for w in widths), *map(fmt, body)])


def file_sha1(path: str, chunk: int = 1 << 20) -> str:
    """sha1 of a file's bytes."""
    h = hashlib.sha1()
    with open(path, 'rb') as f:
        while True:
            block = f.read(chunk)
            if not block:
                return h.hexdigest()
            h.update(block)


def check_ratios(ratios: Sequence[float]) -> Tuple[float, float, float]:
    """Validate ``(train, val[, test])`` fractions: non-negative, training > 0, summing to 1."""
    ratios = [float(r) for r in ratios]
    if len(ratios) == 2:
        ratios.append(0.0)
    if len(ratios) != 3 or any(not np.isfinite(r) or r < 0 for r in ratios) or ratios[0] <= 0:
        raise DatasetError(f'ratios={ratios}: give 2 or 3 non-negative fractions (train val [test]), train > 0')
    if abs(sum(ratios) - 1.0) > 1e-6:
        raise DatasetError(f'ratios={ratios} sum to {sum(ratios):g}, not 1')
    return tuple(ratios)  # type: ignore


def split_targets(n: int, ratios: Sequence[float]) -> List[int]:
    """Split ``n`` items by ``ratios`` with the largest-remainder method (ties favour earlier splits)."""
    exact = [n * r for r in ratios]
    counts = [int(np.floor(e)) for e in exact]
    order = sorted((i for i, r in enumerate(ratios) if r > 0), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[:n - sum(counts)]:
        counts[i] += 1
    return counts


def assign_groups(groups: Sequence[Tuple[Hashable, int]], ratios: Sequence[float], seed: int = 0) -> List[int]:
    """Assign each group (``(stratum, size)``) to a split index, stratum by stratum.

    Within a stratum the groups are shuffled, then placed largest first, each into the split furthest below
    its target (the stratum's size split by ``ratios``). With groups of one this hits the targets exactly.
    """
    rng = np.random.default_rng(seed)
    by_stratum: Dict[Hashable, List[int]] = defaultdict(list)
    for i, (stratum, _) in enumerate(groups):
        by_stratum[stratum].append(i)
    result = [-1] * len(groups)
    open_splits = [k for k, r in enumerate(ratios) if r > 0]
    for stratum in sorted(by_stratum, key=str):
        members = by_stratum[stratum]
        members = [members[k] for k in rng.permutation(len(members))]
        members.sort(key=lambda g: -groups[g][1])  # stable: shuffled order among equal sizes
        target = split_targets(sum(groups[g][1] for g in members), ratios)
        filled = [0] * len(ratios)
        for g in members:
            s = max(open_splits, key=lambda k: (target[k] - filled[k], -k))
            result[g] = s
            filled[s] += groups[g][1]
    return result


class _Output:
    """A temporary folder next to ``out`` that becomes ``out`` on :meth:`commit`."""

    def __init__(self, out: str, link: bool = True) -> None:
        out = osp.abspath(out)
        if osp.exists(out) and (not osp.isdir(out) or os.listdir(out)):
            raise DatasetError(f'output {out} already exists and is not empty; choose a new folder '
                               '(nothing is overwritten)')
        os.makedirs(osp.dirname(out), exist_ok=True)
        self.out = out
        self.link = link
        self.tmp = tempfile.mkdtemp(prefix=f'.{osp.basename(out)}.', dir=osp.dirname(out))
        self._names: Dict[str, set] = defaultdict(set)

    def place(self, src: str, folder: str, name: Optional[str] = None, unique_stem: bool = False) -> str:
        """Hard-link (or copy) ``src`` into ``folder`` (relative) as ``name`` (default: its own name, renamed
        on a clash of names, or of stems with ``unique_stem``, as a label file beside it needs); return it."""
        if name is None:
            stem, ext = osp.splitext(osp.basename(src))
            key = (lambda n: osp.splitext(n)[0].lower()) if unique_stem else (lambda n: n.lower())
            name, k = stem + ext, 1
            while key(name) in self._names[folder]:
                k += 1
                name = f'{stem}_{k}{ext}'
            self._names[folder].add(key(name))
        dst_dir = osp.join(self.tmp, folder)
        os.makedirs(dst_dir, exist_ok=True)
        dst = osp.join(dst_dir, name)
        try:
            if not self.link:
                raise OSError
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)
        return name

    def write_text(self, rel: str, text: str) -> None:
        path = osp.join(self.tmp, rel)
        os.makedirs(osp.dirname(path), exist_ok=True)
        with open(path, 'w', encoding='utf-8') as f:
            f.write(text)

    def write_json(self, rel: str, data: Any) -> None:
        path = osp.join(self.tmp, rel)
        os.makedirs(osp.dirname(path), exist_ok=True)
        with open(path, 'w', encoding='utf-8') as f:
            json.dump(data, f, indent=1 if rel.endswith('labels.json') else None)

    def commit(self) -> None:
        if osp.isdir(self.out):
            os.rmdir(self.out)  # empty (checked on creation); fails loudly if something appeared meanwhile
        os.replace(self.tmp, self.out)

    def discard(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def _hash_groups(paths: Sequence[str]) -> Tuple[List[List[int]], int]:
    """Group indices of ``paths`` by file content; return the groups and the number of extra copies."""
    by_hash: Dict[str, List[int]] = defaultdict(list)
    for i, p in enumerate(paths):
        by_hash[file_sha1(p)].append(i)
    groups = list(by_hash.values())
    return groups, sum(len(g) - 1 for g in groups)


def _majority(values: Sequence[Hashable]) -> Hashable:
    counts = Counter(values)
    return min(counts, key=lambda v: (-counts[v], str(v)))


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


# ------------------------------------------------------------------------------------------- YOLO / VOC
@dataclass
class _BoxImage:
    """One image of a YOLO or VOC source: its file, its annotation file (or None) and its class ids."""
    path: str
    ann: Optional[str]
    labels: List[int]


def _yolo_sources(src: str) -> Tuple[List[str], List[_BoxImage]]:
    names, items, seen = None, [], set()
    for split in yolo_split_names(src):
        split_names, images, source = yolo_split_files(src, split)
        names = names or split_names
        for img in images:
            if osp.realpath(img) in seen:  # a split listing another split's images
                continue
            seen.add(osp.realpath(img))
            label = yolo_label_path(img)
            labels = []
            if osp.lexists(label):
                inside_root(src, label, f'label of {img}')
                width, height = image_size(img)
                labels = [c for c, _ in parse_yolo_labels(label, len(names), width, height)]
            items.append(_BoxImage(img, label if osp.isfile(label) else None, labels))
    if not items:
        raise DatasetError(f'no images in the YOLO dataset {src}')
    return names, items


def _voc_sources(src: str) -> Tuple[List[str], List[_BoxImage]]:
    layout = VocLayout(src)
    names, _, _ = voc_class_names(src, layout)
    if layout.kind == 'single':
        splits = ['']
    elif layout.kind == 'imagesets':
        splits = sorted({n for d in layout.roots for n in layout.split_files(d)})
    else:
        splits = [osp.basename(r) for r in layout.roots]
    items, seen = [], set()
    for split in splits:
        for xml, img_dirs in layout.split_items(split):
            if osp.realpath(xml) in seen:  # VOC's trainval.txt repeats train.txt and val.txt
                continue
            seen.add(osp.realpath(xml))
            record = parse_voc_xml(xml, img_dirs, src)
            unknown = sorted({i['label'] for i in record['instances']} - set(names))
            if unknown:
                raise DatasetError(f'{xml}: classes {unknown} are not in the class list {names}')
            items.append(_BoxImage(record['img_path'], xml, [names.index(i['label']) for i in record['instances']]))
    if not items:
        raise DatasetError(f'no VOC annotations in {src}')
    return names, items


def _split_boxes(kind: str, names: List[str], items: List[_BoxImage], out: _Output, ratios,
                 seed: int) -> SplitReport:
    """Place a YOLO or VOC source into ``out`` in the same format."""
    def stratum(item: _BoxImage) -> Hashable:
        return _majority(item.labels) if item.labels else EMPTY_STRATUM

    groups, dupes = _hash_groups([it.path for it in items])
    conflicts = sum(len({stratum(items[i]) for i in g}) > 1 for g in groups)
    assigned = assign_groups([(_majority([stratum(items[i]) for i in g]), len(g)) for g in groups], ratios, seed)
    splits = [s for s, r in zip(YOLO_SPLITS, ratios) if r > 0]
    per_split: Dict[str, List[int]] = defaultdict(list)
    for g, s in zip(groups, assigned):
        per_split[YOLO_SPLITS[s]] += g
    n_images, n_empty, n_objects = Counter(), Counter(), defaultdict(Counter)
    for split in splits:
        ids = []
        for i in sorted(per_split[split]):
            item = items[i]
            if kind == 'yolo':
                name = out.place(item.path, osp.join('images', split), unique_stem=True)
                if item.ann:
                    out.place(item.ann, osp.join('labels', split), osp.splitext(name)[0] + '.txt')
            else:
                name = out.place(item.path, 'JPEGImages', unique_stem=True)
                _write_voc_xml(out, item.ann, name)
            ids.append(osp.splitext(name)[0])
            n_images[split] += 1
            n_empty[split] += int(not item.labels)
            for c in item.labels:
                n_objects[c][split] += 1
        if kind == 'voc':
            out.write_text(osp.join('ImageSets', 'Main', f'{split}.txt'), ''.join(f'{i}\n' for i in ids))
    if kind == 'yolo':
        import yaml
        data = {s: f'images/{s}' for s in splits}
        data.update(nc=len(names), names=list(names))
        out.write_text('data.yaml', yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    else:
        out.write_text('labels.txt', ''.join(f'{n}\n' for n in names))
    rows = [('images', dict(n_images)), (f'images {EMPTY_STRATUM}', dict(n_empty))]
    rows += [(f'{n} objects', dict(n_objects[c])) for c, n in enumerate(names) if n_objects[c]]
    return SplitReport(kind, out.out, splits, rows, list(names), len(items), dupes,
                       sum(len(g) > 1 for g in groups), conflicts)


def _write_voc_xml(out: _Output, xml: str, image_name: str) -> None:
    """The annotation under ``Annotations/`` named after its image, ``<filename>`` updated if it was renamed."""
    import xml.etree.ElementTree as ET
    stem = osp.splitext(image_name)[0]
    with open(xml, 'rb') as f:
        root = ET.fromstring(f.read())  # already checked by parse_voc_xml
    node = root.find('filename')
    if node is None or node.text != image_name:
        if node is None:
            node = ET.SubElement(root, 'filename')
        node.text = image_name
        out.write_text(osp.join('Annotations', f'{stem}.xml'), ET.tostring(root, encoding='unicode'))
    else:
        out.place(xml, 'Annotations', f'{stem}.xml')


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

