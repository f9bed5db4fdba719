from .centroid_mask import bbox_to_centroid_mask

__all__ = ['bbox_to_centroid_mask']
