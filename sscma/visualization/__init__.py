from .plots import plot_confusion_matrix, plot_training_curves, read_scalars

__all__ = ['plot_confusion_matrix', 'plot_training_curves', 'read_scalars']
