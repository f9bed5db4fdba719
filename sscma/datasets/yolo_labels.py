"""YOLO label files: one object a line, ``class cx cy w h`` or a polygon ``class x1 y1 x2 y2 x3 y3 ...``
normalised to the image, or with a YOLO-pose ``kpt_shape`` (``data.yaml``) the box followed by K keypoints of 2 or
3 values; and the YOLO-pose keys of Ultralytics' ``data.yaml``."""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from sscma.utils.errors import DatasetError

COORD_TOL = 0.01  # normalised coordinates this far outside [0, 1] are clipped; further is an error
POSE_YAML_KEYS = ('kpt_shape', 'flip_idx', 'kpt_names')


def read_lines(path: str) -> List[str]:
    """The lines of a UTF-8 text file; a file that cannot be read is a :class:`DatasetError` naming it."""
    try:
        with open(path, encoding='utf-8') as f:
            return f.read().splitlines()
    except UnicodeDecodeError as e:
        raise DatasetError(f'{path}: not UTF-8 text ({e.reason} at byte {e.start})') from None
    except OSError as e:
        raise DatasetError(f'cannot read {path}: {e.strerror}') from None


def _number(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise ValueError(token)
    return value


def parse_yolo_labels(label_path: str, num_classes: int, width: int, height: int,
                      kpt_shape: Optional[Sequence[int]] = None) -> List[Tuple]:
    """``(class id, [x0, y0, x1, y1] in pixels)`` of each line of a YOLO label file.

    Lines are ``class cx cy w h`` or ``class x1 y1 x2 y2 x3 y3 ...`` (a polygon: its bounding box), all
    normalised to ``[0, 1]``; values up to :data:`COORD_TOL` outside are clipped, further is an error. With
    ``kpt_shape`` ``(K, D)`` (a YOLO-pose ``data.yaml``), lines are ``class cx cy w h`` followed by K keypoints
    of D values (``x y`` or ``x y visibility``) and each entry is ``(class id, box, keypoints)``, keypoints a
    ``(K, 3)`` array in pixels with COCO visibility (0 unlabelled: coordinates 0, 0; D=2 gives 2 to every
    keypoint not at 0, 0).
    """
    objects = []
    n_kpt = int(kpt_shape[0]) * int(kpt_shape[1]) if kpt_shape else 0
    for k, line in enumerate(read_lines(label_path)):
        where = f'{label_path}:{k + 1}'
        tokens = line.split()
        if not tokens:
            continue
        if n_kpt and len(tokens) != 5 + n_kpt:
            raise DatasetError(f'{where}: expected "class cx cy w h" and {kpt_shape[0]} keypoints of {kpt_shape[1]} '
                               f'values (kpt_shape {list(kpt_shape)}): {5 + n_kpt} values, got {len(tokens)}')
        if not n_kpt and not (len(tokens) == 5 or (len(tokens) >= 7 and len(tokens) % 2 == 1)):
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
        kpts = None
        if n_kpt:
            kpts = yolo_keypoints(values[4:], kpt_shape, width, height, where)
            values = values[:4]
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
        objects.append((int(cls), box, kpts) if n_kpt else (int(cls), box))
    return objects


def yolo_keypoints(values: List[float], kpt_shape: Sequence[int], width: int, height: int,
                   where: str) -> np.ndarray:
    """``(K, 3)`` keypoints in pixels with COCO visibility from a YOLO-pose line's normalised values."""
    k, d = int(kpt_shape[0]), int(kpt_shape[1])
    arr = np.asarray(values, np.float64).reshape(k, d)
    vis = arr[:, 2] if d == 3 else np.where((arr[:, :2] != 0).any(1), 2.0, 0.0)
    bad = [v for v in vis if v not in (0, 1, 2)]
    if bad:
        raise DatasetError(f'{where}: keypoint visibility must be 0, 1 or 2, got {bad[0]:g}')
    labelled = vis > 0
    xy = arr[:, :2]
    outside = xy[labelled][(xy[labelled] < -COORD_TOL).any(1) | (xy[labelled] > 1 + COORD_TOL).any(1)]
    if len(outside):
        raise DatasetError(f'{where}: keypoints must be normalised to [0, 1] (divided by the image size '
                           f'{width}x{height}), got {outside[0].round(4).tolist()}')
    px = np.where(labelled[:, None], xy.clip(0, 1) * [width, height], 0.0)
    return np.concatenate([px, vis[:, None]], 1)


def yolo_kpt_shape(data: Dict, path: str) -> Optional[Tuple[int, int]]:
    """``kpt_shape`` of a YOLO-pose ``data.yaml`` as ``(K, D)`` (D 2 or 3), None when it has none."""
    shape = data.get('kpt_shape')
    if shape is None:
        return None
    if not (isinstance(shape, (list, tuple)) and len(shape) == 2 and all(isinstance(v, int) for v in shape)
            and shape[0] > 0 and shape[1] in (2, 3)):
        raise DatasetError(f'{path}: kpt_shape must be [number of keypoints, 2 or 3], got {shape!r}')
    return int(shape[0]), int(shape[1])
