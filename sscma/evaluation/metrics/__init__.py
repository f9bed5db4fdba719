from .fomo_metric import FomoMetric, match_centroids

__all__ = ['FomoMetric', 'match_centroids']
