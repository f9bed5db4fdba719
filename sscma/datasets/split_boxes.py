"""The splitter's writers for box annotations: a COCO, YOLO or Pascal VOC source, its splits merged, is split
again and written back in its format (COCO as a Roboflow export, YOLO as Ultralytics, VOC as VOC2007); the
format table (:mod:`.formats`) names them, :func:`~.split.split_dataset` runs them."""
import os.path as osp
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any, Dict, Hashable, List, Optional, Tuple

from sscma.utils.errors import DatasetError

from .coco_detection import ROBOFLOW_ANN, coco_class_names, coco_sources, load_coco_json
from .file_checks import image_size, inside_root
from .split_common import (COCO_SPLITS, EMPTY_STRATUM, YOLO_SPLITS, SplitReport, hash_groups, majority, SplitOutput,
                           assign_groups)
from .voc_detection import VocLayout, parse_voc_xml, voc_class_names
from .yolo_detection import YoloLayout, read_data_yaml
from .yolo_labels import POSE_YAML_KEYS, parse_yolo_labels


# -------------------------------------------------------------------------------------------------- COCO
def split_coco(src: str, out: SplitOutput, ratios, seed: int, images_dir: Optional[str] = None) -> SplitReport:
    """Place a COCO source (a json file with its images in ``images_dir``, default beside it, or a folder whose
    COCO files :func:`~.coco_detection.coco_sources` finds) into ``out`` as a Roboflow export."""
    if osp.isfile(src):
        return _split_coco([(src, images_dir or osp.dirname(src))], out, ratios, seed)
    return _split_coco(coco_sources(src), out, ratios, seed)


def _split_coco(sources: List[Tuple[str, str]], out: SplitOutput, ratios, seed: int) -> SplitReport:
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
        return majority(ids) if ids else EMPTY_STRATUM

    groups, dupes = hash_groups([p for p, _, _ in images])
    conflicts = sum(len({stratum(images[i][2]) for i in g}) > 1 for g in groups)
    assigned = assign_groups([(majority([stratum(images[i][2]) for i in g]), len(g)) for g in groups], ratios,
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
    classes = coco_class_names(dict(categories=cats, annotations=[a for _, _, anns in images for a in anns]),
                               ', '.join(a for a, _ in sources))
    return SplitReport('coco', out.out, splits, rows, classes, len(images), dupes,
                       sum(len(g) > 1 for g in groups), conflicts)


@dataclass
class _BoxImage:
    """One image of a YOLO or VOC source: its file, its annotation file (or None) and its class ids."""
    path: str
    ann: Optional[str]
    labels: List[int]


def split_yolo(src: str, out: SplitOutput, ratios, seed: int) -> SplitReport:
    """Place a YOLO source (any layout of :class:`~.yolo_detection.YoloLayout`) into ``out`` as Ultralytics; a
    YOLO-pose source keeps its ``kpt_shape``, ``flip_idx`` and ``kpt_names``."""
    report = _split_boxes('yolo', *_yolo_sources(src), out, ratios, seed)
    layout = YoloLayout(src)
    if layout.kpt_shape():
        import yaml
        source = read_data_yaml(layout.yaml)
        data = read_data_yaml(osp.join(out.tmp, 'data.yaml'))
        data.update({k: source[k] for k in POSE_YAML_KEYS if k in source})
        out.write_text('data.yaml', yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return report


def split_voc(src: str, out: SplitOutput, ratios, seed: int) -> SplitReport:
    """Place a Pascal VOC source (any layout of :class:`~.voc_detection.VocLayout`) into ``out`` as VOC2007."""
    return _split_boxes('voc', *_voc_sources(src), out, ratios, seed)


def _yolo_sources(src: str) -> Tuple[List[str], List[_BoxImage]]:
    layout = YoloLayout(src)
    names, items, seen = None, [], set()
    for split in layout.split_names():
        split_names, images, source = layout.split_files(split)
        names = names or split_names
        for img in images:
            if osp.realpath(img) in seen:  # a split listing another split's images
                continue
            seen.add(osp.realpath(img))
            label = layout.label_path(img)
            labels = []
            if osp.lexists(label):
                inside_root(src, label, f'label of {img}')
                width, height = image_size(img)
                labels = [o[0] for o in parse_yolo_labels(label, len(names), width, height, layout.kpt_shape())]
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


def _split_boxes(kind: str, names: List[str], items: List[_BoxImage], out: SplitOutput, ratios,
                 seed: int) -> SplitReport:
    """Place a YOLO or VOC source into ``out`` in the same format."""
    def stratum(item: _BoxImage) -> Hashable:
        return majority(item.labels) if item.labels else EMPTY_STRATUM

    groups, dupes = hash_groups([it.path for it in items])
    conflicts = sum(len({stratum(items[i]) for i in g}) > 1 for g in groups)
    assigned = assign_groups([(majority([stratum(items[i]) for i in g]), len(g)) for g in groups], ratios, seed)
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


def _write_voc_xml(out: SplitOutput, xml: str, image_name: str) -> None:
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
