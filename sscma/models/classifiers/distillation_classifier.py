"""Knowledge distillation: a small classifier trained on labels and on a frozen teacher's soft predictions."""
import glob
import os.path as osp
from typing import List, Optional

import torch
from mmpretrain.models.classifiers import ImageClassifier
from mmpretrain.structures import DataSample
from torch import nn

from sscma.registry import MODELS
from sscma.utils import ConfigError, load_config


def _find_file(path: str) -> Optional[str]:
    """``path`` as given (absolute or from the working directory), else from the project root."""
    if osp.exists(path):
        return path
    root = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
    if not osp.isabs(path) and osp.exists(osp.join(root, path)):
        return osp.join(root, path)
    return None


def _teacher_checkpoint_file(checkpoint: str, teacher_config: str) -> str:
    """A checkpoint file, or the single ``best_*.pth`` of a work dir, with an actionable error otherwise."""
    how = (f'train the teacher first (python tools/train.py {teacher_config} --work-dir DIR) and pass '
           '--cfg-options teacher_checkpoint=DIR (its best_*.pth is used) or a .pth file')
    found = _find_file(checkpoint) if checkpoint else None
    if found is None:
        raise ConfigError(f'teacher_checkpoint={checkpoint!r}: no such file or work dir; {how}')
    if osp.isdir(found):
        best = sorted(glob.glob(osp.join(found, 'best_*.pth')))
        if len(best) != 1:
            what = 'no best_*.pth' if not best else f'{len(best)} best_*.pth files ({", ".join(best)})'
            raise ConfigError(f'teacher_checkpoint={checkpoint!r} is a folder with {what}; '
                              'name the checkpoint file instead')
        return best[0]
    return found


def _build_teacher(teacher_config: str, teacher_checkpoint: str, cfg_options: Optional[dict]) -> nn.Module:
    """Build the model of ``teacher_config`` through the registry and load ``teacher_checkpoint`` strictly."""
    from mmengine.runner.checkpoint import load_checkpoint
    config_file = _find_file(teacher_config)
    if config_file is None or not osp.isfile(config_file):
        raise ConfigError(f'teacher_config={teacher_config!r}: config file not found (relative paths are '
                          'taken from the working directory, then from the project root)')
    cfg = load_config(config_file, cfg_options)
    if 'model' not in cfg:
        raise ConfigError(f'teacher_config={teacher_config!r} defines no model')
    checkpoint = _teacher_checkpoint_file(teacher_checkpoint, teacher_config)
    teacher = MODELS.build(cfg.model)
    try:
        load_checkpoint(teacher, checkpoint, map_location='cpu', strict=True, logger='silent')
    except Exception as e:  # missing/unexpected keys, shape mismatch, unreadable file
        detail = '; '.join(line.strip() for line in str(e).splitlines() if line.strip())
        detail = detail if len(detail) <= 400 else detail[:400] + ' ...'
        raise ConfigError(f'teacher_checkpoint {checkpoint} does not fit the model of {teacher_config} '
                          f'(same config and --cfg-options as the teacher was trained with?): '
                          f'{type(e).__name__}: {detail}') from None
    return teacher


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

    Everything but ``loss`` is the student's: ``predict`` and ``tensor`` modes (what ``tools/test.py`` and
    ``tools/export.py`` use) never run the teacher, and ``state_dict()`` holds the student's keys only, so a
    checkpoint of this model loads into the plain student config (``backbone.*``, ``neck.*``, ``head.*``).

    Args:
        backbone, neck, head, pretrained, train_cfg, data_preprocessor, init_cfg: The student, as for
            ``mmpretrain.ImageClassifier``.
        teacher_config (str): Config file of the teacher (its ``model`` is built).
        teacher_checkpoint (str): The teacher's trained weights, or a work dir holding one ``best_*.pth``.
        teacher_cfg_options (dict, optional): Overrides applied to ``teacher_config`` (e.g.
            ``dict(num_classes=5)``), as ``--cfg-options`` would.
        alpha (float): Weight of the distillation loss, in [0, 1]. Defaults to 0.5.
        distill_loss (dict): The distillation loss. Defaults to ``DistillationKLLoss`` with ``T=4``.
    """

    def __init__(self,
                 backbone: dict,
                 teacher_config: str,
                 teacher_checkpoint: str,
                 neck: Optional[dict] = None,
                 head: Optional[dict] = None,
                 teacher_cfg_options: Optional[dict] = None,
                 alpha: float = 0.5,
                 distill_loss: dict = dict(type='DistillationKLLoss', temperature=4.0),
                 pretrained: Optional[str] = None,
                 train_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if not 0.0 <= alpha <= 1.0:
            raise ConfigError(f'KnowledgeDistillationClassifier: alpha={alpha} must be in [0, 1]')
        teacher = _build_teacher(teacher_config, teacher_checkpoint, teacher_cfg_options)
        super().__init__(backbone=backbone, neck=neck, head=head, pretrained=pretrained, train_cfg=train_cfg,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if not hasattr(self.head, '_get_loss'):
            raise ConfigError(f'KnowledgeDistillationClassifier: the student head {type(self.head).__name__} '
                              'is not an mmpretrain ClsHead (needs _get_loss)')
        student_classes = getattr(self.head, 'num_classes', None)
        teacher_classes = getattr(getattr(teacher, 'head', None), 'num_classes', None)
        if student_classes is not None and teacher_classes is not None and student_classes != teacher_classes:
            raise ConfigError(f'teacher {teacher_config} has num_classes={teacher_classes} but the student has '
                              f'num_classes={student_classes}; distillation needs the same classes')
        if hasattr(teacher, 'data_preprocessor') and \
                _normalisation(teacher.data_preprocessor) != _normalisation(self.data_preprocessor):
            raise ConfigError(f'teacher {teacher_config} preprocesses images differently from the student '
                              f'(to_rgb, mean, std: {_normalisation(teacher.data_preprocessor)} vs '
                              f'{_normalisation(self.data_preprocessor)}); the teacher sees the student\'s inputs')
        self.alpha = float(alpha)
        self.distill_loss = MODELS.build(distill_loss)
        teacher.requires_grad_(False)
        teacher.is_init = True  # init_weights() must not overwrite the loaded weights
        self.teacher = teacher.eval()
        self.teacher_checkpoint = teacher_checkpoint
        self.register_state_dict_post_hook(_drop_teacher_keys)
        self.register_load_state_dict_pre_hook(_keep_teacher_weights)

    def train(self, mode: bool = True) -> 'KnowledgeDistillationClassifier':
        """Switch the student's mode; the teacher stays in eval mode (fixed BatchNorm statistics, no dropout)."""
        super().train(mode)
        self.teacher.eval()
        return self

    @torch.no_grad()
    def teacher_logits(self, inputs: torch.Tensor) -> torch.Tensor:
        """The teacher's class logits for preprocessed ``inputs``."""
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
    for key, value in module.teacher.state_dict(prefix=prefix + 'teacher.', keep_vars=True).items():
        state_dict[key] = value.detach()
