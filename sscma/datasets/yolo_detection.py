"""YOLO txt detection data: Ultralytics (``images/<split>`` + ``labels/<split>``) and Roboflow
(``<split>/images`` + ``<split>/labels``) exports, described by a ``data.yaml`` or found by their folders.

A label file holds one object per line, ``class cx cy w h`` normalised to the EXIF-upright image (or
``class x1 y1 x2 y2 ...``, a polygon, whose bounding box is used as Ultralytics does). An image without a
label file, or with an empty one, is a background image.
"""
import math
import os
import os.path as osp
from typing import Dict, List, Optional, Tuple

from sscma.utils.errors import DatasetError

from .file_checks import check_unique_names, image_size, inside_root
from .image_folder import IMG_EXTENSIONS, _alias_group

YAML_NAMES = ('data.yaml', 'data.yml', 'dataset.yaml', 'dataset.yml')
NAMES_FILES = ('classes.txt', 'obj.names', 'names.txt', 'classes.names')  # labelImg / darknet
# Normalised coordinates this far outside [0, 1] are clipped (exporters round); further out is an error.
COORD_TOL = 0.01
# data.yaml keys of each split, Ultralytics' first
YAML_KEYS = {'train': ('train', ), 'valid': ('val', 'valid', 'validation'), 'test': ('test', )}


def read_data_yaml(path: str) -> Dict:
    """Read a ``data.yaml`` with ``yaml.safe_load`` (no Python tags) and check that it is a mapping."""
    import yaml
    try:
        with open(path, encoding='utf-8') as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as e:
        where = getattr(e, 'problem_mark', None)
        line = f' line {where.line + 1}' if where is not None else ''
        problem = getattr(e, 'problem', None) or str(e).splitlines()[0]
        raise DatasetError(f'{path}:{line} not a plain YAML file ({" ".join(str(problem).split())})') from None
    except UnicodeDecodeError as e:
        raise DatasetError(f'{path}: not UTF-8 text ({e.reason} at byte {e.start})') from None
    if not isinstance(data, dict):
        raise DatasetError(f'{path}: expected a mapping with "names" and "train"/"val" keys, got '
                           f'{type(data).__name__}')
    return data


def yolo_class_names(data: Dict, path: str) -> List[str]:
    """Class names of a ``data.yaml``: ``names`` as a list, or a mapping ``{0: name, ...}``; ``nc`` must agree."""
    names = data.get('names')
    if isinstance(names, dict):
        if not all(isinstance(k, int) and not isinstance(k, bool) for k in names) or \
                sorted(names) != list(range(len(names))):
            raise DatasetError(f'{path}: "names" as a mapping needs the keys 0..{len(names) - 1}, got '
                               f'{list(names)[:10]}')
        names = [names[k] for k in range(len(names))]
    if not isinstance(names, list) or not names:
        raise DatasetError(f'{path}: "names" must be a non-empty list of class names or a mapping '
                           f'{{0: name, ...}}, got {str(names)[:80]}')
    bad = [n for n in names if isinstance(n, bool) or not isinstance(n, (str, int, float)) or str(n).strip() == '']
    if bad:
        raise DatasetError(f'{path}: class names must be non-empty text, got {bad[:5]} in "names"')
    names = [str(n).strip() for n in names]  # Ultralytics reads `1` as the class name '1'
    check_unique_names(names, path)
    nc = data.get('nc')
    if nc is not None and (isinstance(nc, bool) or not isinstance(nc, int) or nc != len(names)):
        raise DatasetError(f'{path}: nc={nc!r} but "names" lists {len(names)} classes')
    return names


def read_names_file(path: str) -> List[str]:
    """One class name a line (labelImg's ``classes.txt``, darknet's ``obj.names``)."""
    try:
        with open(path, encoding='utf-8') as f:
            names = [line.strip() for line in f if line.strip()]
    except UnicodeDecodeError as e:
        raise DatasetError(f'{path}: not UTF-8 text ({e.reason} at byte {e.start})') from None
    if not names:
        raise DatasetError(f'{path}: no class names (expected one name a line)')
    check_unique_names(names, path)
    return names


def yolo_label_path(img_path: str) -> str:
    """Ultralytics' rule: the last ``/images/`` of the path becomes ``/labels/``, the suffix ``.txt``."""
    sa, sb = f'{os.sep}images{os.sep}', f'{os.sep}labels{os.sep}'
    return osp.splitext(sb.join(img_path.rsplit(sa, 1)))[0] + '.txt'


def find_yolo_yaml(data_root: str) -> Optional[str]:
    """The dataset yaml at ``data_root``: ``data.yaml`` (or ``.yml``, ``dataset.yaml``), else a lone ``*.yaml``."""
    for name in YAML_NAMES:
        if osp.isfile(osp.join(data_root, name)):
            return osp.join(data_root, name)
    yamls = [f for f in sorted(os.listdir(data_root)) if f.lower().endswith(('.yaml', '.yml'))]
    return osp.join(data_root, yamls[0]) if len(yamls) == 1 else None


def is_yolo_root(data_root: str) -> bool:
    """Whether ``data_root`` looks like a YOLO export (a dataset yaml, or ``labels`` folders beside ``images``)."""
    if find_yolo_yaml(data_root):
        return True
    if osp.isdir(osp.join(data_root, 'images')) and osp.isdir(osp.join(data_root, 'labels')):
        return True
    return any(osp.isdir(osp.join(data_root, d, 'labels')) for d in os.listdir(data_root))


def _images_under(folder: str) -> List[str]:
    found = []
    for d, dirs, files in os.walk(folder):
        dirs.sort()
        found += [osp.join(d, f) for f in sorted(files) if f.lower().endswith(IMG_EXTENSIONS)]
    return found


def _images_of_entry(path: str, where: str) -> List[str]:
    """Images a ``train``/``val`` entry names: a folder (searched recursively), a list file, or one image."""
    if osp.isdir(path):
        return _images_under(path)
    if path.lower().endswith('.txt'):
        try:
            with open(path, encoding='utf-8') as f:
                lines = [line.strip() for line in f if line.strip()]
        except UnicodeDecodeError as e:
            raise DatasetError(f'{path}: not UTF-8 text ({e.reason} at byte {e.start})') from None
        base = osp.dirname(path)
        files = [line if osp.isabs(line) else osp.normpath(osp.join(base, line)) for line in lines]
        missing = [(k + 1, f) for k, f in enumerate(files) if not osp.isfile(f)]
        if missing:
            raise DatasetError(f'{path}:{missing[0][0]}: image {missing[0][1]} does not exist '
                               f'({len(missing)} of {len(files)} listed images are missing)')
        return files
    if path.lower().endswith(IMG_EXTENSIONS):
        return [path]
    raise DatasetError(f'{where}: {path} is neither a folder, a .txt list of images nor an image')


def _yaml_split_images(data_root: str, yaml_path: str, data: Dict, split: str) -> List[str]:
    yaml_dir = osp.dirname(yaml_path)
    keys = next((list(v) for k, v in YAML_KEYS.items() if split in _alias_group(k)), [split])
    key = next((k for k in keys if data.get(k) not in (None, '')), None)
    if key is None:
        raise DatasetError(f'{yaml_path}: no "{keys[0]}" entry for split "{split}" (looked for {keys})')
    entries = data[key] if isinstance(data[key], list) else [data[key]]
    if not entries or not all(isinstance(e, str) and e for e in entries):
        raise DatasetError(f'{yaml_path}: "{key}" must be a path or a list of paths, got {data[key]!r}')
    bases = [yaml_dir]
    root_path = data.get('path')
    if root_path not in (None, ''):
        if not isinstance(root_path, str):
            raise DatasetError(f'{yaml_path}: "path" must be a folder path, got {root_path!r}')
        bases.insert(0, root_path if osp.isabs(root_path) else osp.join(yaml_dir, root_path))
    images = []
    for entry in entries:
        tried = []
        for base in bases:
            # Roboflow writes `../train/images` next to the yaml; Ultralytics then drops the `../`
            for rel in ([entry, entry[3:]] if entry.startswith('../') else [entry]):
                tried.append(osp.normpath(rel if osp.isabs(rel) else osp.join(base, rel)))
        found = next((p for p in tried if osp.exists(p) and _inside(data_root, p)), None)
        if found is None:
            outside = [p for p in tried if osp.exists(p)]
            if outside:
                inside_root(data_root, outside[0], f'{yaml_path}: "{key}: {entry}"')
            raise DatasetError(f'{yaml_path}: "{key}: {entry}" does not exist (looked for {tried})')
        images += _images_of_entry(found, f'{yaml_path}: "{key}"')
    return images


def _inside(root: str, path: str) -> bool:
    try:
        inside_root(root, path, '')
        return True
    except DatasetError:
        return False


def yolo_split_files(data_root: str, split: str) -> Tuple[List[str], List[str], str]:
    """Return ``(class names, image paths, names source)`` of ``split`` of the YOLO dataset at ``data_root``."""
    yaml_path = find_yolo_yaml(data_root)
    if yaml_path:
        data = read_data_yaml(yaml_path)
        names, source = yolo_class_names(data, yaml_path), yaml_path
        images = _yaml_split_images(data_root, yaml_path, data, split)
    else:
        names_file = next((osp.join(data_root, f) for f in NAMES_FILES if osp.isfile(osp.join(data_root, f))), None)
        if names_file is None:
            raise DatasetError(f'{data_root} has YOLO labels but no data.yaml (with "names") nor a '
                               f'{"/".join(NAMES_FILES)} naming the classes')
        names, source = read_names_file(names_file), names_file
        tried = [osp.join(data_root, *parts) for name in _alias_group(split)
                 for parts in (('images', name), (name, 'images'))]
        folder = next((p for p in tried if osp.isdir(p)), None)
        if folder is None:
            raise DatasetError(f'no "{split}" images in the YOLO dataset {data_root} (looked for {tried})')
        images = _images_under(folder)
    if not images:
        raise DatasetError(f'no images ({", ".join(IMG_EXTENSIONS)}) for split "{split}" of {source}')
    for img in images:
        inside_root(data_root, img, source)
    return names, images, source


def _number(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise ValueError(token)
    return value


def parse_yolo_labels(label_path: str, num_classes: int, width: int, height: int) -> List[Tuple[int, List[float]]]:
    """``(class id, [x0, y0, x1, y1] in pixels)`` of each line of a YOLO label file.

    Lines are ``class cx cy w h`` or ``class x1 y1 x2 y2 x3 y3 ...`` (a polygon: its bounding box), all
    normalised to ``[0, 1]``; values up to :data:`COORD_TOL` outside are clipped, further is an error.
    """
    try:
        with open(label_path, encoding='utf-8') as f:
            lines = f.read().splitlines()
    except UnicodeDecodeError as e:
        raise DatasetError(f'{label_path}: not UTF-8 text ({e.reason} at byte {e.start})') from None
    except OSError as e:
        raise DatasetError(f'cannot read label file {label_path}: {e.strerror}') from None
    objects = []
    for k, line in enumerate(lines):
        where = f'{label_path}:{k + 1}'
        tokens = line.split()
        if not tokens:
            continue
        if not (len(tokens) == 5 or (len(tokens) >= 7 and len(tokens) % 2 == 1)):
            raise DatasetError(f'{where}: expected "class cx cy w h" (or "class x1 y1 x2 y2 x3 y3 ..." for a '
                               f'polygon), got {len(tokens)} values: {line.strip()[:80]!r}')
        try:
            cls = float(tokens[0])
            values = [_number(t) for t in tokens[1:]]
        except ValueError:
            raise DatasetError(f'{where}: values must be finite numbers, got {line.strip()[:80]!r}') from None
        if not cls.is_integer() or not 0 <= cls < num_classes:
            raise DatasetError(f'{where}: class {tokens[0]!r} is not an integer id in 0..{num_classes - 1} '
                               f'({num_classes} names)')
        outside = [v for v in values if not -COORD_TOL <= v <= 1 + COORD_TOL]
        if outside:
            raise DatasetError(f'{where}: coordinates must be normalised to [0, 1] (divided by the image size '
                               f'{width}x{height}), got {outside[0]:g}')
        if len(values) == 4:
            cx, cy, w, h = values
            if w <= 0 or h <= 0:
                raise DatasetError(f'{where}: box width and height must be > 0, got w={w:g} h={h:g}')
            x0, y0, x1, y1 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
        else:
            xs, ys = values[0::2], values[1::2]
            x0, y0, x1, y1 = min(xs), min(ys), max(xs), max(ys)
        box = [min(max(x0, 0.0), 1.0) * width, min(max(y0, 0.0), 1.0) * height,
               min(max(x1, 0.0), 1.0) * width, min(max(y1, 0.0), 1.0) * height]
        if box[2] <= box[0] or box[3] <= box[1]:
            raise DatasetError(f'{where}: the box has no area inside the image: {line.strip()[:80]!r}')
        objects.append((int(cls), box))
    return objects


def load_yolo_split(data_root: str, split: str) -> Tuple[List[str], List[Dict], str]:
    """Return ``(class names, records, names source)``; a record is ``img_path``, ``width``, ``height`` and
    ``instances`` (``bbox`` in pixels, ``label`` name, ``ignore_flag``)."""
    names, images, source = yolo_split_files(data_root, split)
    records = []
    for img in images:
        width, height = image_size(img)
        label = yolo_label_path(img)
        objects = []
        if osp.isfile(label) or osp.islink(label):
            inside_root(data_root, label, f'label of {img}')
            objects = parse_yolo_labels(label, len(names), width, height)
        records.append(dict(img_path=img, width=width, height=height,
                            instances=[dict(bbox=box, label=names[c], ignore_flag=0) for c, box in objects]))
    return names, records, source


def yolo_split_names(data_root: str) -> List[str]:
    """Splits (``train``, ``valid``, ``test``) that the YOLO dataset at ``data_root`` declares or has folders for."""
    yaml_path = find_yolo_yaml(data_root)
    if yaml_path:
        data = read_data_yaml(yaml_path)
        return [s for s, keys in YAML_KEYS.items() if any(data.get(k) not in (None, '') for k in keys)]
    return [s for s in YAML_KEYS if any(osp.isdir(osp.join(data_root, *parts)) for n in _alias_group(s)
                                        for parts in (('images', n), (n, 'images')))]
