"""Pascal VOC xml detection data: VOC2007/2012 (``Annotations/``, ``JPEGImages/``, ``ImageSets/Main/<split>.txt``,
also under ``VOCdevkit/VOC20xx``), split folders of xml + images (Roboflow "Pascal VOC", labelImg), or one set
without splits (CVAT "Pascal VOC 1.1" with ``ImageSets/Main/default.txt`` and ``labelmap.txt``, a labelImg folder),
read with ``split=''`` or re-split by the splitter.

The xml is read as mmdet's ``XMLDataset`` reads it: ``size`` gives the image size (the image is read when it
is missing), box corners are ``int(float(text)) - 1`` (VOC's 1-based pixels), ``difficult`` objects get
``ignore_flag=1``. Files with a DOCTYPE or ENTITY declaration are refused (entity expansion attacks).
"""
import math
import os
import os.path as osp
import re
import xml.etree.ElementTree as ET
from typing import Dict, List, Optional, Tuple

from sscma.utils.errors import DatasetError

from .file_checks import check_unique_names, image_size, inside_root
from .image_folder import IMG_EXTENSIONS, SPLIT_ALIASES, _alias_group

LABEL_FILES = ('labels.txt', 'classes.txt')
LABELMAP = 'labelmap.txt'  # CVAT / datumaro: "# label:color_rgb:parts:actions", then "name:r,g,b::" a line
COORD_TOL = 0.01  # corners this far (fraction of the image, + 1 px) outside are clipped; further is an error
_DECLARATION = re.compile(rb'<!\s*(DOCTYPE|ENTITY)', re.IGNORECASE)


class VocLayout:
    """Where the xml and images of each split of a VOC-style dataset are.

    Attributes:
        kind (str): ``'imagesets'`` (VOC ``ImageSets/Main``), ``'splits'`` (split folders) or ``'single'``.
        roots (list[str]): Folders holding ``Annotations/`` (imagesets), the split folders, or the one set.
    """

    def __init__(self, data_root: str) -> None:
        self.data_root = data_root
        self.kind, self.roots = self._detect(data_root)

    @staticmethod
    def _ann_dir(folder: str) -> str:
        return osp.join(folder, 'Annotations') if osp.isdir(osp.join(folder, 'Annotations')) else folder

    @staticmethod
    def _has_xml(folder: str) -> bool:
        return osp.isdir(folder) and any(f.lower().endswith('.xml') for f in os.listdir(folder))

    def _detect(self, root: str) -> Tuple[Optional[str], List[str]]:
        if not osp.isdir(root):
            return None, []
        candidates = [root]
        for sub in ('VOCdevkit', ''):
            base = osp.join(root, sub)
            if osp.isdir(base):
                candidates += [osp.join(base, d) for d in sorted(os.listdir(base)) if d.upper().startswith('VOC')]
        voc = [d for d in candidates if osp.isdir(osp.join(d, 'Annotations'))]
        with_sets = [d for d in voc if self.split_files(d)]
        if with_sets:
            return 'imagesets', with_sets
        names = [n for names in SPLIT_ALIASES.values() for n in names]
        splits = [osp.join(root, n) for n in names if self._has_xml(self._ann_dir(osp.join(root, n)))]
        if splits:
            return 'splits', splits
        if voc:
            return 'single', voc[:1]
        if self._has_xml(root):
            return 'single', [root]
        return None, []

    @staticmethod
    def split_files(voc_dir: str) -> List[str]:
        """Split lists in ``ImageSets/Main`` (``train.txt``...; not the per-class ``<class>_train.txt``)."""
        main = osp.join(voc_dir, 'ImageSets', 'Main')
        if not osp.isdir(main):
            return []
        known = {n for names in SPLIT_ALIASES.values() for n in names} | {'trainval'}
        return sorted(f[:-4] for f in os.listdir(main) if f.endswith('.txt') and f[:-4] in known)

    def describe(self) -> Optional[str]:
        """One line naming what was found (the folders and files that make it this layout); None if not VOC."""
        def rel(path: str) -> str:
            path = osp.relpath(path, self.data_root).replace(os.sep, '/')
            return '' if path == '.' else path + '/'

        if self.kind == 'imagesets':
            return 'Pascal VOC: ' + ', '.join(
                f'{rel(d)}Annotations/ + {rel(d)}JPEGImages/ + {rel(d)}ImageSets/Main/'
                f'{{{",".join(self.split_files(d))}}}.txt' for d in self.roots)
        if self.kind == 'splits':
            return f'Pascal VOC split folders: {", ".join(rel(d) for d in self.roots)} with the xml beside the images'
        if self.kind == 'single':
            root = self.roots[0]
            if root == self.data_root and not osp.isdir(osp.join(root, 'Annotations')):
                images = [f for f in os.listdir(root) if f.lower().endswith(IMG_EXTENSIONS)]
                return f'labelImg VOC folder: {len(self.all_xml())} .xml beside {len(images)} images'
            extra = [f'{rel(root)}{f}' for f in ('ImageSets/Main/default.txt', LABELMAP)
                     if osp.isfile(osp.join(root, f))]
            kind = 'CVAT Pascal VOC 1.1 export' if extra else 'Pascal VOC set without splits'
            return f'{kind}: ' + ' + '.join([f'{rel(root)}Annotations/', f'{rel(root)}JPEGImages/', *extra])
        return None

    def all_xml(self) -> List[str]:
        """Every annotation file of the dataset (all splits), for the class names."""
        dirs = [osp.join(d, 'Annotations') for d in self.roots] if self.kind == 'imagesets' else \
            [self._ann_dir(d) for d in self.roots]
        return [osp.join(d, f) for d in dirs for f in sorted(os.listdir(d)) if f.lower().endswith('.xml')]

    def split_items(self, split: str) -> List[Tuple[str, List[str]]]:
        """``(xml file, image folders to look in)`` of ``split``."""
        root = self.data_root
        if self.kind is None:
            raise DatasetError(f'no Pascal VOC annotations (*.xml) under {root}')
        if not split:
            if self.kind != 'single':
                raise DatasetError(f'split="" reads a dataset without splits, but {root} has splits; name one')
            return [(x, self._image_dirs(osp.dirname(x))) for x in self.all_xml()]
        if self.kind == 'single':
            raise DatasetError(f'{root} holds one set of VOC annotations without train/valid/test splits; '
                               f'split it first: python tools/dataset_split.py {root} OUT (or use split="")')
        if self.kind == 'splits':
            folder = next((osp.join(root, n) for n in _alias_group(split) if osp.join(root, n) in self.roots), None)
            if folder is None:
                raise DatasetError(f'no "{split}" folder with VOC xml files in {root} (looked for '
                                   f'{list(_alias_group(split))}; found {[osp.basename(r) for r in self.roots]})')
            ann_dir = self._ann_dir(folder)
            return [(osp.join(ann_dir, f), self._image_dirs(folder)) for f in sorted(os.listdir(ann_dir))
                    if f.lower().endswith('.xml')]
        items = []
        names = list(_alias_group(split)) + (['trainval'] if split in ('train', 'training') else [])
        for voc_dir in self.roots:
            present = self.split_files(voc_dir)
            name = next((n for n in names if n in present), None)
            if name is None:
                continue
            list_file = osp.join(voc_dir, 'ImageSets', 'Main', f'{name}.txt')
            with open(list_file, encoding='utf-8', errors='replace') as f:
                ids = [line.split()[0] for line in f if line.strip()]
            for k, img_id in enumerate(ids):
                xml = osp.join(voc_dir, 'Annotations', f'{img_id}.xml')
                inside_root(root, xml, f'{list_file}:{k + 1}')
                if not osp.isfile(xml):
                    raise DatasetError(f'{list_file}:{k + 1}: {img_id} has no annotation file {xml}')
                items.append((xml, self._image_dirs(voc_dir)))
        if not items:
            raise DatasetError(f'no ImageSets/Main/{names[0]}.txt for split "{split}" in {self.roots} (looked for '
                               f'{names}; found {sorted({n for d in self.roots for n in self.split_files(d)})})')
        return items

    @staticmethod
    def _image_dirs(folder: str) -> List[str]:
        parent = osp.dirname(folder) if osp.basename(folder) == 'Annotations' else folder
        return [d for d in (osp.join(parent, 'JPEGImages'), osp.join(parent, 'images'), parent, folder)
                if osp.isdir(d)]


def read_label_names(path: str) -> List[str]:
    """One class name a line (``labels.txt`` / ``classes.txt``), fixing the class ids in that order."""
    from .yolo_detection import read_names_file
    return read_names_file(path)


def read_labelmap(path: str) -> List[str]:
    """Class names of a CVAT / datumaro ``labelmap.txt`` (``name:r,g,b:parts:actions`` a line after ``#``
    comments), in its order, without ``background``: VOC's class 0 that datumaro writes first, not a box class."""
    from .yolo_labels import read_lines
    names = [line.split(':', 1)[0].strip() for line in read_lines(path)
             if line.strip() and not line.lstrip().startswith('#')]
    names = [n for n in names if n != 'background']
    if not names or not all(names):
        raise DatasetError(f'{path}: expected "name:r,g,b:parts:actions" lines naming the classes, got '
                           f'{names or "none"}')
    check_unique_names(names, path)
    return names


def _text(obj: ET.Element, tag: str) -> Optional[str]:
    node = obj.find(tag)
    return None if node is None or node.text is None else node.text.strip()


def read_voc_xml(xml_path: str) -> ET.Element:
    """Parse a VOC xml file, refusing DOCTYPE/ENTITY declarations; the root must be ``<annotation>``."""
    try:
        with open(xml_path, 'rb') as f:
            raw = f.read()
    except OSError as e:
        raise DatasetError(f'cannot read annotation file {xml_path}: {e.strerror}') from None
    if _DECLARATION.search(raw):
        raise DatasetError(f'{xml_path}: DOCTYPE/ENTITY declarations are not accepted in annotation files')
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as e:
        raise DatasetError(f'{xml_path}: malformed XML ({e})') from None
    if root.tag != 'annotation':
        raise DatasetError(f'{xml_path}: expected a Pascal VOC <annotation> root element, got <{root.tag}>')
    return root


def _find_image(xml_path: str, root: ET.Element, img_dirs: List[str]) -> str:
    stem = osp.splitext(osp.basename(xml_path))[0]
    filename = _text(root, 'filename')
    for d in img_dirs:
        for ext in IMG_EXTENSIONS:
            for cand in (stem + ext, stem + ext.upper()):
                if osp.isfile(osp.join(d, cand)):
                    return osp.join(d, cand)
        if filename and osp.isfile(osp.join(d, filename)):
            return osp.join(d, filename)
    raise DatasetError(f'{xml_path}: no image for it ({stem}.jpg/.png/... or <filename> {filename!r}) in '
                       f'{img_dirs}')


def _size(xml_path: str, root: ET.Element, img_path: str) -> Tuple[int, int]:
    size = root.find('size')
    if size is not None:
        try:
            dims = [int(float(_text(size, t))) for t in ('width', 'height')]
        except (TypeError, ValueError, OverflowError):
            dims = None
            if any(_text(size, t) not in (None, '') for t in ('width', 'height')):
                raise DatasetError(f'{xml_path}: <size> needs integer <width> and <height>, got '
                                   f'{_text(size, "width")!r} x {_text(size, "height")!r}') from None
        if dims and min(dims) > 0:
            return dims[0], dims[1]
    return image_size(img_path)  # as mmdet: no (or a zero) size in the xml means reading the image


def parse_voc_xml(xml_path: str, img_dirs: List[str], data_root: str) -> Dict:
    """One image record: ``img_path``, ``width``, ``height``, ``instances`` (``bbox`` in 0-based pixels,
    ``label`` name, ``ignore_flag`` 1 for ``difficult``)."""
    root = read_voc_xml(xml_path)
    img_path = inside_root(data_root, _find_image(xml_path, root, img_dirs), xml_path)
    width, height = _size(xml_path, root, img_path)
    instances = []
    for k, obj in enumerate(root.findall('object')):
        name = _text(obj, 'name')
        where = f'{xml_path}: object {k + 1}' + (f' ({name})' if name else '')
        if not name:
            raise DatasetError(f'{where}: no <name>')
        difficult = _text(obj, 'difficult') or '0'
        if difficult not in ('0', '1'):
            raise DatasetError(f'{where}: <difficult> must be 0 or 1, got {difficult!r}')
        box = obj.find('bndbox')
        if box is None:
            raise DatasetError(f'{where}: no <bndbox>')
        try:
            raw = [float(_text(box, t)) for t in ('xmin', 'ymin', 'xmax', 'ymax')]
            if not all(math.isfinite(v) for v in raw):
                raise ValueError
        except (TypeError, ValueError):
            values = {t: _text(box, t) for t in ('xmin', 'ymin', 'xmax', 'ymax')}
            raise DatasetError(f'{where}: <bndbox> needs numbers xmin, ymin, xmax, ymax; got {values}') from None
        x0, y0, x1, y1 = [int(v) - 1 for v in raw]  # mmdet XMLDataset: int(float(text)) - 1
        if x1 <= x0 or y1 <= y0:
            raise DatasetError(f'{where}: box needs xmax > xmin and ymax > ymin, got xmin={raw[0]:g} '
                               f'ymin={raw[1]:g} xmax={raw[2]:g} ymax={raw[3]:g}')
        mx, my = COORD_TOL * width + 1, COORD_TOL * height + 1
        if not (-mx <= x0 and x1 <= width + mx and -my <= y0 and y1 <= height + my):
            raise DatasetError(f'{where}: box xmin={raw[0]:g} ymin={raw[1]:g} xmax={raw[2]:g} ymax={raw[3]:g} lies '
                               f'outside the {width}x{height} image')
        bbox = [min(max(x0, 0), width), min(max(y0, 0), height), min(max(x1, 0), width), min(max(y1, 0), height)]
        if bbox[2] <= bbox[0] or bbox[3] <= bbox[1]:
            raise DatasetError(f'{where}: box {raw} has no area inside the {width}x{height} image')
        instances.append(dict(bbox=[float(v) for v in bbox], label=name, ignore_flag=int(difficult)))
    return dict(img_path=img_path, width=width, height=height, instances=instances)


def voc_class_names(data_root: str, layout: Optional[VocLayout] = None) -> Tuple[List[str], str, bool]:
    """``(names, source, fixed)``: from ``labels.txt``/``classes.txt`` or CVAT's ``labelmap.txt`` (fixed), else
    the sorted object names of every xml of every split (so all splits get the same ids)."""
    layout = layout or VocLayout(data_root)
    for d in [data_root] + layout.roots:
        for f in LABEL_FILES:
            if osp.isfile(osp.join(d, f)):
                return read_label_names(osp.join(d, f)), osp.join(d, f), True
        if osp.isfile(osp.join(d, LABELMAP)):
            return read_labelmap(osp.join(d, LABELMAP)), osp.join(d, LABELMAP), True
    names = set()
    for xml in layout.all_xml():
        names.update(n for n in (_text(o, 'name') for o in read_voc_xml(xml).findall('object')) if n)
    if not names:
        raise DatasetError(f'no objects in the xml files under {data_root}, and no {"/".join(LABEL_FILES)} '
                           'naming the classes')
    return sorted(names), f'the object names of the xml files under {data_root}', False


def load_voc_split(data_root: str, split: str) -> Tuple[List[str], List[Dict], str]:
    """Return ``(class names, records, names source)`` of ``split`` (see :func:`parse_voc_xml`)."""
    layout = VocLayout(data_root)
    items = layout.split_items(split)
    names, source, fixed = voc_class_names(data_root, layout)
    records = []
    for xml, img_dirs in items:
        record = parse_voc_xml(inside_root(data_root, xml, data_root), img_dirs, data_root)
        unknown = [i['label'] for i in record['instances'] if i['label'] not in names]
        if fixed and unknown:
            raise DatasetError(f'{xml}: class {unknown[0]!r} is not in {source} (it lists {names})')
        records.append(record)
    if not records:
        raise DatasetError(f'no VOC annotation files for split "{split}" under {data_root}')
    return names, records, source


def voc_layout(data_root: str) -> Optional[str]:
    """One line naming the VOC layout found at ``data_root`` (:meth:`VocLayout.describe`); None if none."""
    return VocLayout(data_root).describe()


def is_voc_root(data_root: str) -> bool:
    """Whether ``data_root`` holds VOC-style xml annotations in one of the accepted layouts."""
    return VocLayout(data_root).kind is not None
