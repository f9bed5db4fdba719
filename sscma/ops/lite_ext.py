"""mmcv's compiled ops on torchvision's kernels, for an mmcv without them (``mmcv-lite``).

mmdet and mmpose import ``mmcv.ops`` at module level, and every ``mmcv.ops`` module loads the compiled extension
``mmcv._ext`` when it is imported, so ``mmcv-lite`` (the same Python files, no extension) cannot import them.
The zoo's models call one compiled op, ``nms`` (RTMDet's and YOLOX-Pose's post-processing through
``mmcv.ops.batched_nms``). :func:`install` registers this module as ``mmcv._ext`` when mmcv has no compiled
extension: ``nms`` runs on ``torchvision.ops.nms`` (the same sort, IoU formula and ``>`` test as mmcv's CPU
kernel; tested equal to the compiled op), and every other op raises :class:`CompiledOpMissing` naming the
compiled install. ``SSCMA_MMCV=lite`` uses this module even where the compiled ops exist, ``SSCMA_MMCV=full``
never does.
"""
import importlib.machinery
import importlib.util
import os
import sys

MODULE = 'mmcv._ext'
IMPLEMENTED = ('nms', )


class CompiledOpMissing(RuntimeError):
    """An mmcv op that only mmcv's compiled build has."""


def nms(boxes, scores, iou_threshold: float, offset: int = 0):
    """Indices kept by greedy NMS, highest score first, as mmcv's ``_ext.nms``: boxes ``x1 y1 x2 y2``, a box's
    width is ``x2 - x1 + offset``, a box is dropped when its IoU with a kept one is ``> iou_threshold``, and equal
    scores are visited in the order of torch's default (unstable) descending sort, as mmcv's kernel does."""
    import torch
    import torchvision
    if boxes.numel() == 0:
        return boxes.new_empty((0, ), dtype=torch.long)
    order = scores.sort(0, descending=True)[1]
    # mmcv's kernel compares with a C float threshold: 0.3 is 0.300000012, and an IoU equal to it is kept
    iou_threshold = float(torch.tensor(float(iou_threshold), dtype=torch.float32))
    if offset != 0:
        return _nms_with_offset(boxes, order, iou_threshold, offset)
    # torchvision sorts stably: distinct ranks make it visit the boxes in mmcv's order
    ranks = torch.empty(len(order), dtype=torch.float64, device=scores.device)
    ranks[order] = torch.arange(len(order), 0, -1, dtype=torch.float64, device=scores.device)
    return torchvision.ops.nms(boxes.double() if boxes.dtype != torch.float32 else boxes,
                               ranks if boxes.dtype != torch.float32 else ranks.float(), iou_threshold)


def _nms_with_offset(boxes, order, iou_threshold, offset):
    """mmcv's ``offset=1`` (legacy pixel-inclusive) NMS, in mmcv's order of operations."""
    import torch
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1 + offset) * (y2 - y1 + offset)
    suppressed = torch.zeros(len(boxes), dtype=torch.bool, device=boxes.device)
    keep = []
    for i in order.tolist():
        if suppressed[i]:
            continue
        keep.append(i)
        w = (torch.minimum(x2[i], x2) - torch.maximum(x1[i], x1) + offset).clamp(min=0)
        h = (torch.minimum(y2[i], y2) - torch.maximum(y1[i], y1) + offset).clamp(min=0)
        inter = w * h
        suppressed |= inter / (areas[i] + areas - inter) > iou_threshold
    return torch.tensor(keep, dtype=torch.long, device=boxes.device)


def __getattr__(name: str):
    if name.startswith('__'):
        raise AttributeError(name)

    def missing(*args, **kwargs):
        raise CompiledOpMissing(
            f'mmcv op {name!r} needs mmcv\'s compiled ops, and this environment has mmcv without them (mmcv-lite; '
            f'sscma provides only {", ".join(IMPLEMENTED)}). Install the compiled build: '
            '`SSCMA_MMCV=full bash tools/env.sh` (compiles mmcv once, about 10 minutes, needs a C++ compiler) '
            'or give a prebuilt wheel with `SSCMA_WHEELS=DIR bash tools/env.sh` (docs/install.md)')

    missing.__name__ = name
    return missing


def has_compiled_ops() -> bool:
    """Whether the installed mmcv has its compiled extension (found without importing mmcv)."""
    spec = importlib.util.find_spec('mmcv')
    if spec is None or not spec.submodule_search_locations:
        return False
    return importlib.machinery.PathFinder.find_spec('_ext', list(spec.submodule_search_locations)) is not None


def install() -> bool:
    """Register this module as ``mmcv._ext`` where mmcv lacks its compiled ops, or where ``SSCMA_MMCV=lite``;
    returns whether it is in use. Does nothing once ``mmcv._ext`` is imported."""
    choice = os.environ.get('SSCMA_MMCV', '')
    if choice not in ('', 'lite', 'full'):
        raise ValueError(f'SSCMA_MMCV={choice!r}: expected "lite" (torchvision ops) or "full" (mmcv compiled ops)')
    if MODULE in sys.modules:
        return sys.modules[MODULE] is sys.modules[__name__]
    if choice == 'full' or importlib.util.find_spec('mmcv') is None:
        return False
    if choice == 'lite' or not has_compiled_ops():
        sys.modules[MODULE] = sys.modules[__name__]
        return True
    return False
