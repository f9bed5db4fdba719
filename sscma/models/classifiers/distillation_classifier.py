"""Knowledge distillation: a small classifier trained on labels and on a frozen teacher's soft predictions."""
from typing import List, Optional, Union

import torch
from mmpretrain.models.classifiers import ImageClassifier
from mmpretrain.structures import DataSample
from torch import nn

from sscma.registry import MODELS
from sscma.utils.checkpoint import CheckpointError, few, fit_state_dict, load_state_dict
from sscma.utils.errors import ConfigError


def _load_teacher(teacher: nn.Module, checkpoint: str, teacher_config: Optional[str]) -> None:
    """Load ``checkpoint`` into ``teacher``, which it must fit exactly."""
    source = teacher_config or type(teacher).__name__
    try:
        state = load_state_dict(checkpoint)
    except CheckpointError as e:
        raise ConfigError(f'teacher_checkpoint {checkpoint}: {e}') from None
    merged, fit = fit_state_dict(teacher.state_dict(), state)
    if not fit.exact:
        parts = []
        if fit.reshaped:
            parts.append('size mismatch for ' + few(fit.reshaped, fmt=lambda r: f'{r[0]}: checkpoint {list(r[1])} '
                                                     f'vs model {list(r[2])}'))
        if fit.missing:
            parts.append(f'missing keys {few(fit.missing)}')
        if fit.unexpected:
            parts.append(f'unexpected keys {few(fit.unexpected)}')
        raise ConfigError(f'teacher_checkpoint {checkpoint} does not fit the model of {source} (same config and '
                          f'--cfg-options as the teacher was trained with?): {"; ".join(parts)}')
    teacher.load_state_dict(merged, strict=True)


def _normalisation(preprocessor: nn.Module) -> tuple:
    """What a data preprocessor does to pixels: channel swap, mean and std (``None`` when not normalising)."""
    swap = bool(getattr(preprocessor, '_channel_conversion', False) or getattr(preprocessor, 'to_rgb', False))
    if not getattr(preprocessor, '_enable_normalize', False):
        return swap, None, None
    return swap, preprocessor.mean.flatten().tolist(), preprocessor.std.flatten().tolist()


@MODELS.register_module()
class KnowledgeDistillationClassifier(ImageClassifier):
    """An ``ImageClassifier`` (the student) trained with a frozen teacher classifier's soft targets.

    The loss is ``(1 - alpha) * task loss + alpha * distill_loss(student logits, teacher logits)``, with
    ``DistillationKLLoss`` giving ``T^2 * KL(softmax(teacher / T) || softmax(student / T))``. The teacher is
    built from its own config file through the registry, loaded from its checkpoint, frozen and kept in eval
    mode; it sees the student's preprocessed inputs, so both preprocessors must normalise alike.

    The teacher comes as a model config (``teacher``) and its weights (``teacher_checkpoint``). A training
    config names the teacher's *config file* instead (``teacher_config``, ``teacher_cfg_options``): models do
    not read config files, so :func:`sscma.apis.resolve_teacher` (which ``tools/train.py`` runs) turns it into
    ``teacher`` first. Built without ``teacher`` the model is the student alone, which is all that ``predict``
    and ``tensor`` (``tools/test.py``, ``tools/export.py``) use; ``loss`` then says how to add the teacher.

    Everything but ``loss`` is the student's: ``predict`` and ``tensor`` modes never run the teacher, and
    ``state_dict()`` holds the student's keys only, so a checkpoint of this model loads into the plain student
    config (``backbone.*``, ``neck.*``, ``head.*``).

    Args:
        backbone, neck, head, pretrained, train_cfg, data_preprocessor, init_cfg: The student, as for
            ``mmpretrain.ImageClassifier``.
        teacher (dict | nn.Module, optional): The teacher's model config (built through the registry) or the
            teacher itself. Defaults to None (the student alone).
        teacher_checkpoint (str, optional): The teacher's trained weights (a ``.pth`` file), loaded into a
            ``teacher`` built from a config; they must fit it exactly.
        teacher_config (str, optional): The teacher's config file, as named in a config; read by
            :func:`sscma.apis.resolve_teacher`, kept here for messages.
        teacher_cfg_options (dict, optional): Overrides for ``teacher_config`` (e.g. ``dict(num_classes=5)``);
            read by :func:`sscma.apis.resolve_teacher`.
        alpha (float): Weight of the distillation loss, in [0, 1]. Defaults to 0.5.
        distill_loss (dict): The distillation loss. Defaults to ``DistillationKLLoss`` with ``T=4``.
    """

    def __init__(self,
                 backbone: dict,
                 teacher: Optional[Union[dict, nn.Module]] = None,
                 teacher_checkpoint: Optional[str] = None,
                 neck: Optional[dict] = None,
                 head: Optional[dict] = None,
                 teacher_config: Optional[str] = None,
                 teacher_cfg_options: Optional[dict] = None,
                 alpha: float = 0.5,
                 distill_loss: dict = dict(type='DistillationKLLoss', temperature=4.0),
                 pretrained: Optional[str] = None,
                 train_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if not 0.0 <= alpha <= 1.0:
            raise ConfigError(f'KnowledgeDistillationClassifier: alpha={alpha} must be in [0, 1]')
        if isinstance(teacher, dict):
            teacher = MODELS.build(teacher)
            if teacher_checkpoint:
                _load_teacher(teacher, teacher_checkpoint, teacher_config)
        super().__init__(backbone=backbone, neck=neck, head=head, pretrained=pretrained, train_cfg=train_cfg,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if not hasattr(self.head, '_get_loss'):
            raise ConfigError(f'KnowledgeDistillationClassifier: the student head {type(self.head).__name__} '
                              'is not an mmpretrain ClsHead (needs _get_loss)')
        name = teacher_config or type(teacher).__name__
        student_classes = getattr(self.head, 'num_classes', None)
        teacher_classes = getattr(getattr(teacher, 'head', None), 'num_classes', None)
        if student_classes is not None and teacher_classes is not None and student_classes != teacher_classes:
            raise ConfigError(f'teacher {name} has num_classes={teacher_classes} but the student has '
                              f'num_classes={student_classes}; distillation needs the same classes')
        if hasattr(teacher, 'data_preprocessor') and \
                _normalisation(teacher.data_preprocessor) != _normalisation(self.data_preprocessor):
            raise ConfigError(f'teacher {name} preprocesses images differently from the student '
                              f'(to_rgb, mean, std: {_normalisation(teacher.data_preprocessor)} vs '
                              f'{_normalisation(self.data_preprocessor)}); the teacher sees the student\'s inputs')
        self.teacher_config = teacher_config
        self.alpha = float(alpha)
        self.distill_loss = MODELS.build(distill_loss)
        self.teacher = None
        if teacher is not None:
            teacher.requires_grad_(False)
            teacher.is_init = True  # init_weights() must not overwrite the loaded weights
            self.teacher = teacher.eval()
        self.teacher_checkpoint = teacher_checkpoint
        self.register_state_dict_post_hook(_drop_teacher_keys)
        self.register_load_state_dict_pre_hook(_keep_teacher_weights)

    def train(self, mode: bool = True) -> 'KnowledgeDistillationClassifier':
        """Switch the student's mode; the teacher stays in eval mode (fixed BatchNorm statistics, no dropout)."""
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()
        return self

    @torch.no_grad()
    def teacher_logits(self, inputs: torch.Tensor) -> torch.Tensor:
        """The teacher's class logits for preprocessed ``inputs``."""
        if self.teacher is None:
            raise ConfigError(
                'KnowledgeDistillationClassifier was built without its teacher'
                + (f' (teacher_config={self.teacher_config!r} is a file: sscma.apis.resolve_teacher reads it, '
                   'as tools/train.py does)' if self.teacher_config else ' (give teacher=dict(...))'))
        out = self.teacher(inputs, mode='tensor')
        return out[-1] if isinstance(out, (tuple, list)) else out

    def loss(self, inputs: torch.Tensor, data_samples: List[DataSample]) -> dict:
        """Student task losses (scaled by ``1 - alpha``) and ``loss_kd`` (scaled by ``alpha``)."""
        logits = self.head(self.extract_feat(inputs))
        task = self.head._get_loss(logits, data_samples)
        losses = {('loss_cls' if k == 'loss' else k): (v * (1.0 - self.alpha) if 'loss' in k else v)
                  for k, v in task.items()}
        losses['loss_kd'] = self.alpha * self.distill_loss(logits, self.teacher_logits(inputs))
        return losses


def _drop_teacher_keys(module: nn.Module, state_dict: dict, prefix: str, local_metadata: dict) -> None:
    """State-dict post-hook: checkpoints hold the student only."""
    for key in [k for k in state_dict if k.startswith(prefix + 'teacher.')]:
        del state_dict[key]
    for key in [k for k in getattr(state_dict, '_metadata', {}) if k.startswith(prefix + 'teacher')]:
        del state_dict._metadata[key]


def _keep_teacher_weights(module: nn.Module, state_dict: dict, prefix: str, *args) -> None:
    """Load-state-dict pre-hook: a (student-only) checkpoint leaves the loaded teacher as it is."""
    if module.teacher is None:
        return
    for key, value in module.teacher.state_dict(prefix=prefix + 'teacher.', keep_vars=True).items():
        state_dict[key] = value.detach()
