from .fomo_head import FomoHead
from .pfld_head import PFLDHead

__all__ = ['FomoHead']
__all__ += ['PFLDHead']
from .lraspp_head import LRASPPHead

__all__ += ['LRASPPHead']
from .yolox_pose_head import PackedYOLOXPoseHead

__all__ += ['PackedYOLOXPoseHead']
