from .centroid_mask import bbox_to_centroid_mask, bbox_to_centroid_masks
from .keypoint_codec import decode_keypoints, encode_keypoints
from .distilled_init import DistilledMobileNetV2
from .imagenet_init import TorchvisionMobileNetV2

__all__ = ['bbox_to_centroid_mask', 'bbox_to_centroid_masks']
__all__ += ['decode_keypoints', 'encode_keypoints', 'DistilledMobileNetV2', 'TorchvisionMobileNetV2']
