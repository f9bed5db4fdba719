from .distillation_classifier import KnowledgeDistillationClassifier

__all__ = ['KnowledgeDistillationClassifier']
