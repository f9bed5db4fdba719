"""Index masks drawn from polygons: one rasteriser for every segmentation layout and the generated set."""
from typing import Sequence, Tuple

import cv2
import numpy as np

IGNORE_INDEX = 255  # a mask pixel no class is scored on (Pascal VOC's outline band, mmsegmentation's ignore)


def rasterise(polygons: Sequence[Tuple[int, Sequence[float]]], hw: Tuple[int, int]) -> np.ndarray:
    """A ``(H, W)`` uint8 index mask from ``(class index, [x1, y1, x2, y2, ...] in pixels)`` pairs, drawn in
    order (a later polygon covers an earlier one)."""
    mask = np.zeros(hw, np.uint8)
    for cls, coords in polygons:
        pts = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
        if len(pts) >= 3:
            cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], int(cls))
    return mask
