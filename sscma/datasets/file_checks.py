"""Checks shared by the dataset readers: JSON read with a clear error, files stay inside the dataset root, image
sizes as decoded."""
import json
import os
import os.path as osp
from typing import Any, Sequence, Tuple

from sscma.utils.errors import DatasetError

EXIF_ORIENTATION = 0x0112
# EXIF orientations 5-8 rotate by 90 degrees: the upright image has width and height swapped.
_TRANSPOSED = (5, 6, 7, 8)


def read_json(path: str) -> Any:
    """``json.load`` of ``path``; a :class:`DatasetError` naming the file for invalid JSON, a text that is not
    UTF-8 or nesting too deep for the parser."""
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise DatasetError(f'{path}: not valid JSON ({e})') from None
    except UnicodeDecodeError as e:
        raise DatasetError(f'{path}: not UTF-8 text ({e.reason} at byte {e.start})') from None
    except RecursionError:
        raise DatasetError(f'{path}: JSON nested too deeply') from None


def inside_root(root: str, path: str, what: str) -> str:
    """Return ``path`` if it (after ``..`` and symlinks are resolved) lies inside ``root``; else raise.

    Annotation files name other files; a name such as ``../../etc/passwd`` or a symlink leaving the dataset
    would read (or, for the splitter, copy) files the user never meant to hand over.
    """
    real_root = osp.realpath(root)
    real = osp.realpath(path)
    if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
        raise DatasetError(f'{what}: {path} points outside the dataset root {root} (resolves to {real}); '
                           'annotation and image paths must stay inside it')
    return path


def image_size(path: str) -> Tuple[int, int]:
    """``(width, height)`` of the image as the loaders decode it: EXIF-upright (orientations 5-8 swap them).

    Only the header is read (PIL opens lazily). cv2, which ``LoadImage`` uses, applies the EXIF orientation,
    and Ultralytics labels are normalised on the upright image, so sizes must be of the upright image too.
    """
    from PIL import Image
    try:
        with Image.open(path) as im:
            width, height = im.size
            orientation = im.getexif().get(EXIF_ORIENTATION, 1)
    except (OSError, SyntaxError, ValueError) as e:  # PIL raises these for missing/unknown/broken files
        raise DatasetError(f'cannot read the size of image {path}: {e}') from None
    if orientation in _TRANSPOSED:
        width, height = height, width
    return int(width), int(height)


def check_unique_names(names: Sequence[str], where: str, what: str = 'class names') -> None:
    """Raise :class:`DatasetError` naming the repeated entries of ``names`` (``where``: the file at fault)."""
    dupes = sorted({n for n in names if list(names).count(n) > 1})
    if dupes:
        raise DatasetError(f'{where}: {what} must be unique, repeated: {dupes}')
