"""Semantic segmentation: backbone + decoder, logits at stride 8, resized to the image outside the graph."""
import math
from typing import List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel

from sscma.models.utils.feature_info import backbone_feature_info
from sscma.registry import MODELS

IGNORE_INDEX = 255


@MODELS.register_module()
class SemanticSegmentor(BaseModel):
    """A class per pixel: the decoder's logits at the finest feature stride, upsampled (bilinear) to the input
    for the loss and to the original image for predictions, outside the exported graph.

    ``forward(mode='tensor')`` (what export traces) returns ``(B, num_classes, H / stride, W / stride)`` logits;
    ``predict`` sets ``pred_sem_seg`` (original-image size, int64) and ``seg_logits`` (the stride grid) on each
    data sample.

    Args:
        backbone (dict): e.g. ``dict(type='MobileNetV2', out_indices=(2, 4))`` (stride 8 and 16).
        head (dict): e.g. ``dict(type='LRASPPHead', num_classes=3)``; ``in_channels`` and ``pool_size`` follow
            the backbone and ``input_size``.
        input_size (tuple[int, int]): Network input ``(width, height)``.
        data_preprocessor (dict, optional): Normalisation and batch augmentations.
    """

    def __init__(self, backbone: dict, head: dict, input_size: Union[int, Sequence[int]] = (96, 96),
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        info = backbone_feature_info(self.backbone, 'in_channels')
        w, h = (int(input_size), ) * 2 if isinstance(input_size, (int, float)) else map(int, input_size)
        self.input_size = (w, h)
        self.stride = info[0].stride
        head = dict(head)
        head.setdefault('in_channels', [info[0].channels, info[-1].channels])
        head.setdefault('pool_size', [math.ceil(h / info[-1].stride), math.ceil(w / info[-1].stride)])
        head.setdefault('upsample', info[-1].stride // info[0].stride)
        self.head = MODELS.build(head)

    @property
    def num_classes(self) -> int:
        return self.head.num_classes

    def forward(self, inputs: torch.Tensor, data_samples: Optional[List] = None, mode: str = 'tensor'):
        logits = self.head(self.backbone(inputs))
        if mode == 'loss':
            target = torch.stack([s.gt_sem_seg for s in data_samples]).to(logits.device)
            up = F.interpolate(logits, size=target.shape[-2:], mode='bilinear', align_corners=False)
            loss = F.cross_entropy(up, target, ignore_index=IGNORE_INDEX)
            with torch.no_grad():
                valid = target != IGNORE_INDEX
                acc = (up.argmax(1)[valid] == target[valid]).float().mean() if valid.any() else up.new_tensor(1.0)
            return dict(loss_seg=loss, pixel_acc=acc)
        if mode == 'predict':
            return self.add_predictions(logits, data_samples)
        return logits

    @staticmethod
    def add_predictions(logits: torch.Tensor, data_samples: List) -> List:
        """``pred_sem_seg`` at each sample's original size (logits resized bilinearly, then argmax)."""
        for sample, lg in zip(data_samples, logits.float()):
            h, w = sample.metainfo['ori_shape'][:2]
            up = F.interpolate(lg[None], size=(int(h), int(w)), mode='bilinear', align_corners=False)[0]
            sample.set_field(up.argmax(0).cpu(), 'pred_sem_seg')
            sample.set_field(lg.detach().cpu(), 'seg_logits')
        return data_samples
