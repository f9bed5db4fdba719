"""FOMO targets: boxes to a per-cell class map at the network's output stride."""
from typing import Tuple

import torch


def bbox_to_centroid_mask(bboxes: torch.Tensor, labels: torch.Tensor, mask_hw: Tuple[int, int],
                          stride: float) -> torch.Tensor:
    """Mark the output cell holding each box centre with the box's class.

    Args:
        bboxes (Tensor): ``(N, 4)`` boxes, xyxy, in network-input pixels.
        labels (Tensor): ``(N,)`` class indices starting at 0.
        mask_hw (tuple[int, int]): Output map height and width.
        stride (float): Input pixels per output cell.

    Returns:
        Tensor: ``(H, W)`` long map, 0 for background and ``label + 1`` at centre cells. Centres on or
        beyond the border fall in the nearest edge cell; when two centres share a cell, the smaller box
        (listed later after sorting by area, descending) wins, so small objects are not hidden by large ones.
    """
    h, w = mask_hw
    mask = torch.zeros((h, w), dtype=torch.long, device=bboxes.device)
    if bboxes.numel() == 0:
        return mask
    bboxes = bboxes.reshape(-1, 4).float()
    area = (bboxes[:, 2] - bboxes[:, 0]) * (bboxes[:, 3] - bboxes[:, 1])
    order = torch.argsort(area, descending=True)
    cx = ((bboxes[order, 0] + bboxes[order, 2]) / 2 / stride).floor().long().clamp(0, w - 1)
    cy = ((bboxes[order, 1] + bboxes[order, 3]) / 2 / stride).floor().long().clamp(0, h - 1)
    for x, y, label in zip(cx.tolist(), cy.tolist(), labels.reshape(-1)[order].tolist()):
        mask[y, x] = int(label) + 1
    return mask
