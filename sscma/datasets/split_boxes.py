"""Re-splitting YOLO and Pascal VOC sources, written back in the format they came in (see :mod:`.split`)."""
import os.path as osp
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Dict, Hashable, List, Optional, Tuple

from sscma.utils.errors import DatasetError

from .file_checks import image_size, inside_root
from .split_common import EMPTY_STRATUM, YOLO_SPLITS, SplitReport, _hash_groups, _majority, _Output, assign_groups
from .voc_detection import VocLayout, parse_voc_xml, voc_class_names
from .yolo_detection import parse_yolo_labels, yolo_label_path, yolo_split_files, yolo_split_names


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
