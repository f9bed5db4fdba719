"""YOLO txt detection data: Ultralytics (``images/<split>`` + ``labels/<split>``) and Roboflow
(``<split>/images`` + ``<split>/labels``) exports, described by a ``data.yaml`` or found by their folders; CVAT
"YOLO 1.1" (darknet: ``obj.data``, ``obj.names``, ``train.txt``, ``obj_train_data/``) and labelImg folders (images,
``.txt`` and ``classes.txt`` side by side), whose labels sit beside their images (see :class:`YoloLayout`).

A label file holds one object per line, ``class cx cy w h`` normalised to the EXIF-upright image (or
``class x1 y1 x2 y2 ...``, a polygon, whose bounding box is used as Ultralytics does; with a ``kpt_shape`` in
``data.yaml``, ``class cx cy w h`` followed by the keypoints: YOLO-pose). An image without a label file, or with
an empty one, is a background image. Label lines are parsed by :mod:`.yolo_labels`.
"""
import os
import os.path as osp
from typing import Dict, List, Optional, Tuple

from sscma.utils.errors import DatasetError

from .file_checks import check_unique_names, image_size, inside_root
from .image_folder import IMG_EXTENSIONS, _alias_group
from .yolo_labels import parse_yolo_labels, read_lines, yolo_kpt_shape

YAML_NAMES = ('data.yaml', 'data.yml', 'dataset.yaml', 'dataset.yml')
NAMES_FILES = ('classes.txt', 'obj.names', 'names.txt', 'classes.names')  # labelImg / darknet
# Normalised coordinates this far outside [0, 1] are clipped (exporters round); further out is an error.
# data.yaml keys of each split, Ultralytics' first
YAML_KEYS = {'train': ('train', ), 'valid': ('val', 'valid', 'validation'), 'test': ('test', )}
DARKNET_DATA = 'obj.data'  # darknet / CVAT "YOLO 1.1": classes, names and one list file per subset
DARKNET_KEYS = ('classes', 'names', 'backup', 'eval')  # obj.data keys that are not subsets


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
    names = [line.strip() for line in read_lines(path) if line.strip()]
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
        lines = [line.strip() for line in read_lines(path) if line.strip()]
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


def _yaml_splits(data: Dict) -> List[str]:
    """The splits a ``data.yaml`` declares (``train``, ``valid``, ``test`` with a path)."""
    return [s for s, keys in YAML_KEYS.items() if any(data.get(k) not in (None, '') for k in keys)]


def _inside(root: str, path: str) -> bool:
    try:
        inside_root(root, path, '')
        return True
    except DatasetError:
        return False


class YoloLayout:
    """Where the images, labels and class names of a YOLO dataset are.

    Attributes:
        kind (str): ``'yaml'`` (Ultralytics or Roboflow ``data.yaml``), ``'darknet'`` (CVAT "YOLO 1.1":
            ``obj.data``, ``obj.names``, ``train.txt``, ``obj_train_data/`` with each label beside its image),
            ``'folders'`` (``images/<split>`` + ``labels/<split>`` or ``<split>/images`` + ``<split>/labels``,
            with a ``classes.txt``), ``'flat'`` (labelImg: images, ``.txt`` labels and ``classes.txt`` side by
            side) or None (not YOLO).
    """

    def __init__(self, data_root: str) -> None:
        root = self.data_root = data_root
        self.yaml = find_yolo_yaml(root) if osp.isdir(root) else None
        self.names_file = next((osp.join(root, f) for f in NAMES_FILES if osp.isfile(osp.join(root, f))), None)
        if not osp.isdir(root):
            self.kind = None
        elif self.yaml or osp.isfile(osp.join(root, DARKNET_DATA)):
            self.kind = 'yaml' if self.yaml else 'darknet'
        elif (osp.isdir(osp.join(root, 'images')) and osp.isdir(osp.join(root, 'labels'))) or \
                any(osp.isdir(osp.join(root, d, 'labels')) for d in os.listdir(root)):
            self.kind = 'folders'
        else:
            self.kind = 'flat' if self.names_file and self._flat_labels() else None

    def _flat_images(self) -> List[str]:
        return [osp.join(self.data_root, f) for f in sorted(os.listdir(self.data_root))
                if f.lower().endswith(IMG_EXTENSIONS) and osp.isfile(osp.join(self.data_root, f))]

    def _flat_labels(self) -> List[str]:
        return [p for p in (osp.splitext(i)[0] + '.txt' for i in self._flat_images()) if osp.isfile(p)]

    def label_path(self, img_path: str) -> str:
        """The label file of an image: beside it (darknet, labelImg), else :func:`yolo_label_path`."""
        return osp.splitext(img_path)[0] + '.txt' if self.kind in ('darknet', 'flat') else yolo_label_path(img_path)

    def _darknet(self) -> Tuple[Dict[str, str], Dict[str, str]]:
        """``obj.data`` as ``({key: value}, {subset: list file})``: ``names = data/obj.names``, ``train = ...``."""
        path, entries = osp.join(self.data_root, DARKNET_DATA), {}
        for k, line in enumerate(read_lines(path)):
            line = line.split('#', 1)[0].strip()
            if line and '=' not in line:
                raise DatasetError(f'{path}:{k + 1}: expected "key = value", got {line[:80]!r}')
            if line:
                key, value = (t.strip() for t in line.split('=', 1))
                entries[key] = value
        return entries, {k: v for k, v in entries.items() if k not in DARKNET_KEYS and v}

    def _darknet_path(self, value: str, where: str) -> str:
        """A path darknet / CVAT wrote (``data/obj_train_data/a.jpg``, relative to darknet's working folder whose
        ``data/`` is the export): found in the export root, without the leading ``data/`` when needed."""
        value = value.replace('\\', '/')
        tried = [osp.normpath(osp.join(self.data_root, v))
                 for v in [value] + ([value[len('data/'):]] if value.startswith('data/') else [])]
        found = next((p for p in tried if osp.exists(p)), None)
        if found is None:
            raise DatasetError(f'{where}: {value} does not exist (looked for {tried})')
        return inside_root(self.data_root, found, where)

    def _darknet_split(self, split: str) -> Tuple[List[str], List[str], str]:
        data_path = osp.join(self.data_root, DARKNET_DATA)
        entries, subsets = self._darknet()
        names_file = self._darknet_path(entries.get('names') or 'obj.names', f'{data_path}: names')
        keys = [k for k in subsets if not split or k in _alias_group(split) or k == split]
        if not keys:
            hint = (f'; it holds one set: split it first: python tools/dataset_split.py {self.data_root} OUT (or '
                    'read it whole with split="")' if len(subsets) <= 1 else '')
            raise DatasetError(f'{data_path}: no "{split}" subset (looked for {list(_alias_group(split))}; found '
                               f'{list(subsets)}){hint}')
        images = []
        for key in keys:  # split="": every subset, the export whole
            list_file = self._darknet_path(subsets[key], f'{data_path}: {key}')
            images += [self._darknet_path(line.strip(), f'{list_file}:{k + 1}')
                       for k, line in enumerate(read_lines(list_file)) if line.strip()]
        return read_names_file(names_file), list(dict.fromkeys(images)), names_file

    def _split_dirs(self) -> Dict[str, str]:
        """``{split: image folder}`` of the ``folders`` layout (``images/<split>`` or ``<split>/images``)."""
        found = {}
        for s in YAML_KEYS:
            dirs = [osp.join(self.data_root, *p) for n in _alias_group(s) for p in (('images', n), (n, 'images'))]
            found[s] = next((d for d in dirs if osp.isdir(d)), None)
        return {s: d for s, d in found.items() if d}

    def split_names(self) -> List[str]:
        """The splits declared (``data.yaml``, ``obj.data`` subsets) or found (folders); ``['']`` for labelImg."""
        if self.kind == 'yaml':
            declared = _yaml_splits(read_data_yaml(self.yaml))
            return declared if declared or not self._split_dirs() else list(self._split_dirs())
        return list(self._darknet()[1]) if self.kind == 'darknet' else [''] if self.kind == 'flat' else \
            list(self._split_dirs())

    def kpt_shape(self) -> Optional[Tuple[int, int]]:
        """``(K, D)`` of a YOLO-pose ``data.yaml`` (None: boxes only)."""
        return yolo_kpt_shape(read_data_yaml(self.yaml), self.yaml) if self.kind == 'yaml' else None

    def split_files(self, split: str) -> Tuple[List[str], List[str], str]:
        """Return ``(class names, image paths, names source)`` of ``split`` (``''``: a set without splits)."""
        root = self.data_root
        if self.kind == 'yaml':
            data = read_data_yaml(self.yaml)
            names, source = yolo_class_names(data, self.yaml), self.yaml
            if _yaml_splits(data) or not self._split_dirs():
                images = _yaml_split_images(root, self.yaml, data, split)
            else:  # a data.yaml with names only: the images/<split> (or <split>/images) folders
                images = _images_under(self._folder_of(split))
        elif self.kind == 'darknet':
            names, images, source = self._darknet_split(split)
        elif self.kind is None:
            raise DatasetError(f'no YOLO dataset at {root} (no data.yaml, obj.data, labels/ folders or .txt labels)')
        elif self.names_file is None:
            raise DatasetError(f'{root} has YOLO labels but no data.yaml (with "names") nor a '
                               f'{"/".join(NAMES_FILES)} naming the classes')
        elif self.kind == 'flat' and split:
            raise DatasetError(f'{root} is one labelImg YOLO folder without train/valid/test splits, so it has no '
                               f'"{split}" split; split it first: python tools/dataset_split.py {root} OUT (or read '
                               'it whole with split="")')
        else:
            names, source = read_names_file(self.names_file), self.names_file
            images = self._flat_images() if self.kind == 'flat' else _images_under(self._folder_of(split))
        if not images:
            raise DatasetError(f'no images ({", ".join(IMG_EXTENSIONS)}) for split "{split}" of {source}')
        for img in images:
            inside_root(root, img, source)
        return names, images, source

    def _folder_of(self, split: str) -> str:
        """The image folder of ``split`` in the ``images/<split>`` or ``<split>/images`` layout."""
        folder = self._split_dirs().get(next((k for k in YAML_KEYS if split in _alias_group(k)), split))
        if folder is None:
            raise DatasetError(f'no "{split}" images in the YOLO dataset {self.data_root} (looked for images/<split> '
                               f'and <split>/images with <split> in {list(_alias_group(split))})')
        return folder

    def describe(self) -> Optional[str]:
        """One line naming what was found (the files that make it this layout); None if not YOLO."""
        names = osp.basename(self.names_file) if self.names_file else f'no {"/".join(NAMES_FILES)}'
        if self.kind == 'yaml':
            data = read_data_yaml(self.yaml)
            keys = [k for keys in YAML_KEYS.values() for k in keys if isinstance(data.get(k), (str, list))]
            if not keys:
                folders = [osp.relpath(d, self.data_root) + '/' for d in self._split_dirs().values()]
                return f'YOLO {osp.basename(self.yaml)} (names only) + {", ".join(folders) or "no image folders"}'
            return f'YOLO {osp.basename(self.yaml)}: ' + ', '.join(f'{k}: {data[k]}' for k in keys)
        if self.kind == 'darknet':
            entries, subsets = self._darknet()
            files = [v[len('data/'):] if v.startswith('data/') else v
                     for v in [entries.get('names') or 'no names', *subsets.values()]]
            folders = sorted(d + '/' for d in os.listdir(self.data_root) if d.startswith('obj_') and
                             d.endswith('_data') and osp.isdir(osp.join(self.data_root, d)))
            return f'CVAT YOLO 1.1 export: {" + ".join([DARKNET_DATA, *files, *folders])}'
        if self.kind == 'flat':
            return (f'labelImg YOLO folder: {len(self._flat_images())} images, {len(self._flat_labels())} .txt '
                    f'labels and {names} side by side')
        if self.kind == 'folders':
            dirs = ' + '.join(osp.relpath(d, self.data_root).replace(os.sep, '/') + '/'
                              for d in self._split_dirs().values())
            return f'YOLO folders: {dirs or "images/ + labels/"} with labels/ beside, {names}'
        return None


def yolo_layout(data_root: str) -> Optional[str]:
    """One line naming the YOLO layout found at ``data_root`` (:meth:`YoloLayout.describe`); None if none."""
    return YoloLayout(data_root).describe()


def is_yolo_root(data_root: str) -> bool:
    """Whether ``data_root`` is a YOLO dataset in one of the layouts of :class:`YoloLayout`."""
    return YoloLayout(data_root).kind is not None


def load_yolo_split(data_root: str, split: str) -> Tuple[List[str], List[Dict], str]:
    """Return ``(class names, records, names source)``; a record is ``img_path``, ``width``, ``height`` and
    ``instances`` (``bbox`` in pixels, ``label`` name, ``ignore_flag``, and for YOLO-pose ``keypoints``: (K, 3)
    in pixels with COCO visibility)."""
    layout = YoloLayout(data_root)
    names, images, source = layout.split_files(split)
    kpt_shape = layout.kpt_shape()
    records = []
    for img in images:
        width, height = image_size(img)
        label = layout.label_path(img)
        objects = []
        if osp.isfile(label) or osp.islink(label):
            inside_root(data_root, label, f'label of {img}')
            objects = parse_yolo_labels(label, len(names), width, height, kpt_shape)
        instances = [dict(bbox=o[1], label=names[o[0]], ignore_flag=0) for o in objects]
        if kpt_shape:
            for inst, o in zip(instances, objects):
                inst['keypoints'] = o[2]
        records.append(dict(img_path=img, width=width, height=height, instances=instances))
    return names, records, source
