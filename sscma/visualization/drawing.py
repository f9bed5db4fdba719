"""Drawing of ground truth and predictions on images with OpenCV (RGB arrays in, RGB arrays out).

Coordinates are original-image pixels (corner convention); every tile is resized so that its longer side is
``size`` pixels. :class:`~sscma.visualization.SampleGridVisualizer` turns data samples into these calls.
"""
from typing import List, Optional, Sequence

import cv2
import numpy as np

PALETTE = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
           (240, 50, 230), (210, 245, 60), (250, 190, 190), (0, 128, 128)]


def draw_detections(img: np.ndarray, gt_boxes: np.ndarray, gt_labels: np.ndarray, points: np.ndarray,
                    labels: np.ndarray, scores: np.ndarray, classes: Sequence[str], size: int = 192,
                    pred_boxes: Optional[np.ndarray] = None) -> np.ndarray:
    """Draw ground-truth boxes (thin) and predicted centroids (filled dots + score) on an RGB copy;
    ``pred_boxes`` (``(N, 4)`` x0, y0, x1, y1, one per point) are drawn too (2 px, class colour)."""
    h, w = img.shape[:2]
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    scale = size / max(h, w)
    canvas = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_LINEAR)
    for box, label in zip(gt_boxes.reshape(-1, 4) * scale, gt_labels):
        x0, y0, x1, y1 = box.round().astype(int)
        cv2.rectangle(canvas, (x0, y0), (x1, y1), PALETTE[int(label) % len(PALETTE)], 1)
    if pred_boxes is not None:
        for box, label in zip(np.asarray(pred_boxes).reshape(-1, 4) * scale, labels):
            x0, y0, x1, y1 = box.round().astype(int)
            cv2.rectangle(canvas, (x0, y0), (x1, y1), PALETTE[int(label) % len(PALETTE)], 2)
    for (x, y), label, score in zip(points.reshape(-1, 2) * scale, labels, scores):
        color = PALETTE[int(label) % len(PALETTE)]
        cv2.circle(canvas, (int(x), int(y)), 4, color, -1)
        cv2.circle(canvas, (int(x), int(y)), 4, (255, 255, 255), 1)
        name = classes[int(label)] if int(label) < len(classes) else str(int(label))
        cv2.putText(canvas, f'{name} {score:.2f}', (int(x) + 5, int(y) - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
                    color, 1, cv2.LINE_AA)
    return canvas


def draw_keypoints(img: np.ndarray, gt: np.ndarray, pred: np.ndarray, gt_visible: Optional[np.ndarray] = None,
                   text: str = '', size: int = 192, link: Sequence[int] = (0, 1)) -> np.ndarray:
    """Draw ground-truth keypoints (white rings) and predictions (filled dots, one colour per keypoint).

    ``gt`` / ``pred`` are ``(K, 2)`` original-image pixels (corner convention). ``link`` joins two
    keypoints with a line (the meter's centre and needle tip by default); ``text`` goes in the top-left.
    """
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    h, w = img.shape[:2]
    scale = size / max(h, w)
    canvas = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_LINEAR)
    vis = np.ones(len(gt), bool) if gt_visible is None else np.asarray(gt_visible).reshape(-1) > 0

    def px(p):
        return int(round((p[0] * scale - 0.5) * 16)), int(round((p[1] * scale - 0.5) * 16))

    a, b = tuple(link) if len(link) == 2 else (None, None)
    if a is not None and max(a, b) < len(gt) and vis[a] and vis[b]:
        cv2.line(canvas, px(gt[a]), px(gt[b]), (255, 255, 255), 1, cv2.LINE_AA, 4)
    if a is not None and max(a, b) < len(pred):
        cv2.line(canvas, px(pred[a]), px(pred[b]), (255, 255, 0), 1, cv2.LINE_AA, 4)
    for k, (g, v) in enumerate(zip(gt, vis)):
        if v:
            cv2.circle(canvas, px(g), 5 * 16, (255, 255, 255), 1, cv2.LINE_AA, 4)
    for k, p in enumerate(pred):
        color = PALETTE[k % len(PALETTE)]
        cv2.circle(canvas, px(p), 3 * 16, color, -1, cv2.LINE_AA, 4)
    return draw_caption(canvas, text) if text else canvas


def rgb_at_size(img: np.ndarray, size: Optional[int] = None) -> np.ndarray:
    """``img`` as RGB (a grey image converted), resized (bilinear) to ``size`` pixels on the longer side when given."""
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if size:
        h, w = img.shape[:2]
        scale = size / max(h, w)
        img = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_LINEAR)
    return img


def draw_poses(img: np.ndarray, gt: np.ndarray, gt_visible: np.ndarray, pred: np.ndarray, pred_visible: np.ndarray,
               skeleton: Sequence[Sequence[int]], size: int = 192, text: str = '') -> np.ndarray:
    """Several objects' keypoints: ground truth as white rings and white links, predictions as dots (one colour per
    keypoint) joined by the ``skeleton`` links (0-based pairs) in yellow.

    ``gt`` ``(G, K, 2)`` with ``gt_visible`` ``(G, K)`` (> 0: labelled); ``pred`` ``(P, K, 2)`` with
    ``pred_visible`` ``(P, K)`` scores (keypoints under 0.5 are not drawn); original-image pixels.
    """
    canvas = rgb_at_size(img, size)
    scale = canvas.shape[1] / img.shape[1]

    def px(p):
        return int(round((p[0] * scale - 0.5) * 16)), int(round((p[1] * scale - 0.5) * 16))

    for kpts, shown, colour, truth in ((gt, np.asarray(gt_visible) > 0, (255, 255, 255), True),
                                       (pred, np.asarray(pred_visible) >= 0.5, (255, 255, 0), False)):
        if not len(kpts):
            continue
        for obj, vis in zip(np.asarray(kpts).reshape(len(kpts), -1, 2), shown.reshape(len(kpts), -1)):
            for a, b in skeleton:
                if max(a, b) < len(obj) and vis[a] and vis[b]:
                    cv2.line(canvas, px(obj[a]), px(obj[b]), colour, 1, cv2.LINE_AA, 4)
            for k, (p, v) in enumerate(zip(obj, vis)):
                if not v:
                    continue
                if truth:
                    cv2.circle(canvas, px(p), 4 * 16, colour, 1, cv2.LINE_AA, 4)
                else:
                    cv2.circle(canvas, px(p), 2 * 16, PALETTE[k % len(PALETTE)], -1, cv2.LINE_AA, 4)
    return draw_caption(canvas, text) if text else canvas


def draw_anomaly_map(img: np.ndarray, amap: np.ndarray, mask: Optional[np.ndarray], text: str,
                     size: Optional[int] = None, vmax: float = 2.0) -> np.ndarray:
    """The anomaly map (bilinear to the image, 0..``vmax`` in the JET colours, more opaque where higher) over an RGB
    copy of ``img``, the decision boundary (map = 1) in white, a true ``mask`` (bool, image size) in green, and
    ``text`` as caption; resized to ``size`` on the longer side when given."""
    img = rgb_at_size(img, size)
    h, w = img.shape[:2]
    heat = cv2.resize(np.asarray(amap, np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    colour = cv2.applyColorMap((np.clip(heat / vmax, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_JET)
    alpha = (0.15 + 0.6 * np.clip(heat / vmax, 0, 1))[..., None]  # cool cells stay see-through
    canvas = (img.astype(np.float32) * (1 - alpha) + cv2.cvtColor(colour, cv2.COLOR_BGR2RGB) * alpha).astype(np.uint8)
    edges = [((heat >= 1.0), (255, 255, 255))]
    if mask is not None:
        edges.append((cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0, (0, 255, 0)))
    for region, rgb in edges:
        contours, _ = cv2.findContours(region.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(canvas, contours, -1, rgb, 1, cv2.LINE_AA)
    return draw_caption(canvas, text) if text else canvas


def draw_segmentation(img: np.ndarray, pred: np.ndarray, true: Optional[np.ndarray], classes: Sequence[str],
                      size: Optional[int] = None) -> np.ndarray:
    """Predicted classes (index mask, image size; 0 = background left clear) as half-transparent colours over an
    RGB copy of ``img``, the true mask's class outlines in white, the classes present as caption; resized to
    ``size`` on the longer side when given."""
    img = rgb_at_size(img, size)
    h, w = img.shape[:2]
    pred = cv2.resize(pred.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
    colours = np.array([(0, 0, 0)] + [PALETTE[i % len(PALETTE)] for i in range(255)], np.float32)
    canvas = img.astype(np.float32)
    fg = (pred > 0)[..., None]
    canvas = np.where(fg, canvas * 0.5 + colours[pred] * 0.5, canvas).astype(np.uint8)
    if true is not None:
        true = cv2.resize(true.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
        for c in np.unique(true):
            if c in (0, 255):
                continue
            contours, _ = cv2.findContours((true == c).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(canvas, contours, -1, (255, 255, 255), 1, cv2.LINE_AA)
    present = [classes[c] if c < len(classes) else str(c) for c in np.unique(pred) if c > 0]
    return draw_caption(canvas, ' '.join(present)) if present else canvas


def draw_caption(img: np.ndarray, text: str, size: Optional[int] = None) -> np.ndarray:
    """``text`` in the top-left corner (white on a black outline) of an RGB copy, resized to ``size`` on the
    longer side when given (a classifier's prediction, a meter reading)."""
    canvas = rgb_at_size(img, size).copy()
    cv2.putText(canvas, text, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(canvas, text, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 255), 1, cv2.LINE_AA)
    return canvas


def make_grid(tiles: List[np.ndarray], cols: int = 4) -> np.ndarray:
    """Tiles in rows of ``cols`` on a white background, 4 pixels apart."""
    th = max(t.shape[0] for t in tiles)
    tw = max(t.shape[1] for t in tiles)
    rows = (len(tiles) + cols - 1) // cols
    grid = np.full((rows * (th + 4), cols * (tw + 4), 3), 255, np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        grid[r * (th + 4):r * (th + 4) + t.shape[0], c * (tw + 4):c * (tw + 4) + t.shape[1]] = t
    return grid
