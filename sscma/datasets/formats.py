"""The dataset formats sscma reads, in one table: how each is recognised, read, and written back by the splitter.

:func:`recognise` tries the entries of :data:`DATASET_FORMATS` in order (COCO json, YOLO txt, Pascal VOC xml,
segmentation masks, class folders); the first that recognises the folder wins and names what it found in one
line, which the splitter prints so that a misread layout shows at once. A folder that none recognises is an
error naming the folders and files seen and the layouts expected. ``DetectionDataset`` (through
:func:`detect_format`), ``SegmentationDataset`` and ``tools/dataset_split.py`` (through :func:`recognise`) share
the table; adding a format is adding an entry.

Class folders come last and never match a folder holding ``images/``, ``labels/``, ``annotations/``,
``JPEGImages/``, ``Annotations/``, ``img_dir/``, ``ann_dir/`` or ``SegmentationClass/``: such a folder is a
detection or segmentation layout or an error, never a classification set with a class named "images". Their
entry's recogniser and writer are here (``ImageFolderDataset`` reads them); the other formats' live beside their
readers and in :mod:`.split_boxes` and :mod:`.split_masks`.
"""
import os
import os.path as osp
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from sscma.utils.errors import ConfigError, DatasetError

from .coco_detection import coco_layout, load_coco_split
from .image_folder import (IMG_EXTENSIONS, SPLIT_ALIASES, _class_dirs, check_class_folder, layout_dirs,
                           read_labels_json)
from .split_boxes import split_coco, split_voc, split_yolo
from .split_common import FOLDER_SPLITS, SplitReport, hash_groups, majority, SplitOutput, assign_groups
from .split_masks import mask_png_layout, split_mask_pngs, split_voc_seg, voc_seg_layout
from .voc_detection import load_voc_split, voc_layout
from .yolo_detection import load_yolo_split, yolo_layout

SPLIT_COMMAND = 'python tools/dataset_split.py EXPORT OUT'


@dataclass(frozen=True)
class DatasetFormat:
    """One entry of the format table.

    Attributes:
        title (str): What the format is called in messages: ``'COCO json'``, ``'YOLO txt'``...
        name (str): ``DetectionDataset(format=...)`` and :attr:`SplitReport.kind`: ``'coco'``, ``'yolo'``,
            ``'voc'``, ``'masks'``, ``'voc_seg'`` or ``'folder'``.
        task (str): ``'detection'``, ``'segmentation'`` (mask layouts; YOLO-seg and COCO polygons are read by
            ``SegmentationDataset`` and split by the detection entries) or ``'classification'``.
        layouts (tuple[str]): The layouts it recognises, as errors list them (``docs/datasets.md`` shows each).
        recognise (Callable[[str], str | None]): ``root -> one line naming what was found``, None if not this
            format.
        write (Callable[..., SplitReport]): ``(src, out, ratios, seed)``: the splitter's writer.
        writes (str): The layout ``write`` produces.
        read (Callable, optional): ``(root, split) -> (class names, records, source)`` for detection formats
            (records as ``DetectionDataset`` takes them); class folders are read by ``ImageFolderDataset``.
    """
    title: str
    name: str
    task: str
    layouts: Tuple[str, ...]
    recognise: Callable[[str], Optional[str]]
    write: Callable[..., SplitReport]
    writes: str
    read: Optional[Callable[[str, str], Tuple[List[str], List[Dict], str]]] = None


# ----------------------------------------------------- class folders (read by ImageFolderDataset)
def class_folders_layout(root: str) -> Optional[str]:
    """One line naming the class folders at ``root`` (``<class>/``, or split folders holding them); None if
    none, or if a subfolder is one of a detection layout (``images``, ``labels``, ``Annotations``...)."""
    if not osp.isdir(root):
        return None
    subdirs = _subdirs(root)
    if not subdirs or layout_dirs(subdirs):
        return None
    split_names = {n for names in SPLIT_ALIASES.values() for n in names}
    splits = [d for d in subdirs if d in split_names]
    if not splits:
        return f'class folders: {_few([d + "/" for d in subdirs], 6)}'
    classes = sorted({c for d in splits for c in _subdirs(osp.join(root, d))})
    if not classes or layout_dirs(classes):
        return None
    return f'class folders in {", ".join(d + "/" for d in splits)}: {_few([c + "/" for c in classes], 6)}'


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
            files = sorted(f for f in os.listdir(folder) if osp.isfile(osp.join(folder, f)))
            check_class_folder(folder, files)
            items += [(osp.join(folder, f), cls) for f in files if f.lower().endswith(IMG_EXTENSIONS)]
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


def split_class_folders(src: str, out: SplitOutput, ratios, seed: int) -> SplitReport:
    """Place a class-folder source into ``out`` as the Sony layout plus ``labels.json``."""
    classes, items = _folder_sources(src)
    groups, dupes = hash_groups([p for p, _ in items])
    conflicts = sum(len({items[i][1] for i in g}) > 1 for g in groups)
    assigned = assign_groups([(majority([items[i][1] for i in g]), len(g)) for g in groups], ratios, seed)
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


# Tried in this order by recognise(); the first entry that recognises a folder wins.
DATASET_FORMATS: Tuple[DatasetFormat, ...] = (
    DatasetFormat(
        title='COCO json', name='coco', task='detection',
        layouts=('Roboflow COCO: <split>/_annotations.coco.json beside the images',
                 'COCO 2017: annotations/instances_<split>.json + <split>/ or images/',
                 'CVAT "COCO 1.0": annotations/instances_default.json + images/'),
        recognise=coco_layout, read=load_coco_split,
        write=split_coco, writes='Roboflow COCO export: {train,valid,test}/_annotations.coco.json'),
    DatasetFormat(
        title='YOLO txt', name='yolo', task='detection',
        layouts=('Ultralytics / Roboflow YOLO: data.yaml + images/ + labels/',
                 'CVAT "YOLO 1.1": obj.data + obj.names + train.txt + obj_train_data/',
                 'labelImg YOLO: images, .txt labels and classes.txt side by side'),
        recognise=yolo_layout, read=load_yolo_split,
        write=split_yolo, writes='Ultralytics YOLO: data.yaml + images/{train,val,test}/ + labels/{train,val,test}/'),
    DatasetFormat(
        title='Pascal VOC xml', name='voc', task='detection',
        layouts=('Pascal VOC: Annotations/ + JPEGImages/ + ImageSets/Main/<split>.txt',
                 'CVAT "Pascal VOC 1.1": Annotations/ + JPEGImages/ + ImageSets/Main/default.txt + labelmap.txt',
                 'labelImg VOC: .xml beside the images, in one folder or in <split>/ folders'),
        recognise=voc_layout, read=load_voc_split,
        write=split_voc, writes='Pascal VOC: Annotations/ + JPEGImages/ + ImageSets/Main/{train,val,test}.txt + '
                                'labels.txt'),
    DatasetFormat(
        title='mask PNGs', name='masks', task='segmentation',
        layouts=('mmsegmentation: img_dir/<split>/ + ann_dir/<split>/<stem>.png + classes.txt', ),
        recognise=mask_png_layout,
        write=split_mask_pngs, writes='mmsegmentation: img_dir/{train,val,test}/ + ann_dir/{train,val,test}/ + '
                                      'classes.txt'),
    DatasetFormat(
        title='VOC segmentation masks', name='voc_seg', task='segmentation',
        layouts=('Pascal VOC / CVAT "Segmentation mask 1.1": JPEGImages/ + SegmentationClass/ + '
                 'ImageSets/Segmentation/<split>.txt + labelmap.txt', ),
        recognise=voc_seg_layout,
        write=split_voc_seg, writes='Pascal VOC: JPEGImages/ + SegmentationClass/ + '
                                    'ImageSets/Segmentation/{train,val,test}.txt + labelmap.txt / classes.txt'),
    DatasetFormat(
        title='class folders', name='folder', task='classification',
        layouts=('<class>/*.jpg, or training/ validation/ test/ holding <class>/*.jpg', ),
        recognise=class_folders_layout,
        write=split_class_folders, writes='Sony class folders: {training,validation,test}/<class>/ + labels.json'),
)


def format_named(name: str) -> DatasetFormat:
    """The table entry called ``name``."""
    for fmt in DATASET_FORMATS:
        if fmt.name == name:
            return fmt
    raise ConfigError(f'format={name!r}: expected one of {[f.name for f in DATASET_FORMATS]}')


def recognise(root: str, task: Optional[str] = None) -> Tuple[DatasetFormat, str]:
    """Return the first entry (of ``task``, or of any task) that recognises ``root``, and what it found.

    Raises:
        DatasetError: ``root`` does not exist, or no entry recognises it (the message lists the folders and
            files seen and the layouts expected).
    """
    if not osp.exists(root) or (task == 'detection' and not osp.isdir(root)):
        raise DatasetError(f'data_root={root} does not exist or is not a folder')
    entries = [f for f in DATASET_FORMATS if task in (None, f.task)]
    for fmt in entries:
        found = fmt.recognise(root)
        if found:
            return fmt, found
    expected = [f'{fmt.title} ({"; ".join(fmt.layouts)})' for fmt in entries]
    expected = ', '.join(expected[:-1]) + ' or ' + expected[-1] if len(expected) > 1 else expected[0]
    what = 'no detection annotations found' if task == 'detection' else 'no dataset layout recognised'
    raise DatasetError(f'{what} under data_root={root}: expected {expected}; found {describe_contents(root)}. '
                       f'Layouts: docs/datasets.md; re-split an export with {SPLIT_COMMAND}')


def detect_format(root: str, task: Optional[str] = 'detection') -> str:
    """The name of the format of the dataset at ``root`` (by default among the detection formats)."""
    return recognise(root, task)[0].name


def describe_contents(root: str, limit: int = 8) -> str:
    """What a folder holds, in one line: its subfolders with the kinds of entries in each, and its own files."""
    if osp.isfile(root):
        return f'the file {osp.basename(root)}'
    subdirs = _subdirs(root)
    parts = [f'{d}/ ({_kinds(osp.join(root, d), folders=True) or "empty"})' for d in subdirs[:limit]]
    more = f' (+{len(subdirs) - limit} more)' if len(subdirs) > limit else ''
    folders = f'folders {", ".join(parts)}{more}' if parts else 'no folders'
    return f'{folders}; files: {_kinds(root) or "none"}'


def _subdirs(folder: str) -> List[str]:
    return sorted(d for d in os.listdir(folder) if osp.isdir(osp.join(folder, d)) and not d.startswith('.'))


def _kinds(folder: str, folders: bool = False) -> str:
    """``12 .jpg, 12 .txt`` (and ``2 folders`` with ``folders``) for the entries directly in ``folder``."""
    counts: Counter = Counter()
    for f in os.listdir(folder):
        if f.startswith('.'):
            continue
        if osp.isdir(osp.join(folder, f)):
            counts['folder'] += folders
        else:
            counts[osp.splitext(f)[1].lower() or f] += 1
    counts = +counts  # drops the zero count of folders
    text = ', '.join(f'{n} {k}' + ('s' if k == 'folder' and n > 1 else '') for k, n in counts.most_common(4))
    return text + (f' (+{len(counts) - 4} kinds)' if len(counts) > 4 else '')


def _few(items: Sequence[str], n: int) -> str:
    return ', '.join(items[:n]) + (f' (+{len(items) - n} more)' if len(items) > n else '')
