from .semantic_segmentor import SemanticSegmentor

__all__ = ['SemanticSegmentor']
