"""Soft-target loss of knowledge distillation (Hinton et al., 2015)."""
import torch
import torch.nn.functional as F
from torch import nn

from sscma.registry import MODELS


@MODELS.register_module()
class DistillationKLLoss(nn.Module):
    """``T^2 * KL(softmax(teacher / T) || softmax(student / T))``, averaged over the batch.

    The ``T^2`` factor keeps the gradients of the soft targets at the scale of a hard-label loss whatever
    the temperature, so the weight between the two does not have to be retuned when ``T`` changes.

    Args:
        temperature (float): Softening temperature ``T`` applied to both sets of logits. Defaults to 4.
        loss_weight (float): Multiplier of the loss. Defaults to 1.
    """

    def __init__(self, temperature: float = 4.0, loss_weight: float = 1.0) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f'DistillationKLLoss: temperature={temperature} must be positive')
        self.temperature = float(temperature)
        self.loss_weight = loss_weight

    def forward(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
        """Both ``(N, C)`` logits (before softmax); the teacher's are treated as constants."""
        if student_logits.shape != teacher_logits.shape:
            raise ValueError(f'DistillationKLLoss: student logits {tuple(student_logits.shape)} and teacher '
                             f'logits {tuple(teacher_logits.shape)} differ in shape')
        t = self.temperature
        log_p_student = F.log_softmax(student_logits.float() / t, dim=1)
        log_p_teacher = F.log_softmax(teacher_logits.detach().float() / t, dim=1)
        kl = F.kl_div(log_p_student, log_p_teacher, reduction='batchmean', log_target=True)
        return self.loss_weight * t * t * kl
