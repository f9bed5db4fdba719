"""Knowledge distillation: the KD loss, a frozen teacher, a student-only model outside training and checkpoints."""
import copy
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.runner.checkpoint import load_checkpoint
from mmpretrain.structures import DataSample

from sscma.apis import resolve_teacher
from sscma.registry import MODELS
from sscma.utils import ConfigError, load_config, register_all_modules

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
KD_CONFIG = osp.join(REPO, 'configs/distillation/mobilenetv2_0.1_from_1.0_digits.py')


def classifier_cfg(widen=0.1, num_classes=4):
    return dict(
        type='mmpretrain.ImageClassifier',
        data_preprocessor=dict(type='mmpretrain.ClsDataPreprocessor', num_classes=num_classes,
                               mean=[127.5] * 3, std=[127.5] * 3, to_rgb=True),
        backbone=dict(type='MobileNetV2', widen_factor=widen, out_indices=(7, )),
        neck=dict(type='mmpretrain.GlobalAveragePooling'),
        head=dict(type='mmpretrain.LinearClsHead', num_classes=num_classes, in_channels=1280))


@pytest.fixture(scope='module')
def teacher_files(tmp_path_factory):
    """A teacher config file and a checkpoint of it (random weights, BatchNorm statistics made non-trivial)."""
    register_all_modules()
    root = tmp_path_factory.mktemp('teacher')
    config = root / 'teacher.py'
    config.write_text(f'default_scope = "sscma"\nnum_classes = 4\nmodel = {classifier_cfg(0.35, 4)!r}\n'
                      "model['head']['num_classes'] = num_classes\n"
                      "model['data_preprocessor']['num_classes'] = num_classes\n")
    torch.manual_seed(0)
    teacher = MODELS.build(classifier_cfg(0.35, 4))
    for m in teacher.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
    checkpoint = root / 'best_accuracy_top1_epoch_3.pth'
    torch.save(dict(state_dict=teacher.state_dict(), meta=dict()), checkpoint)
    return str(config), str(checkpoint)


def build_kd(teacher_files, **kwargs):
    config, checkpoint = teacher_files
    cfg = classifier_cfg(0.1, 4)
    cfg.update(type='KnowledgeDistillationClassifier', teacher_config=config, teacher_checkpoint=checkpoint,
               alpha=0.5, distill_loss=dict(type='DistillationKLLoss', temperature=2.0))
    cfg.update(kwargs)
    return MODELS.build(resolve_teacher(cfg))


def samples(labels):
    return [DataSample().set_gt_label(int(y)) for y in labels]


def test_kd_loss_matches_hand_computation():
    register_all_modules()
    student = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    teacher = torch.tensor([[2.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    t = 2.0

    def softmax(x):
        e = np.exp(x - x.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    p_s, p_t = softmax(student.numpy() / t), softmax(teacher.numpy() / t)
    expected = t * t * np.mean(np.sum(p_t * (np.log(p_t) - np.log(p_s)), axis=1))
    loss = MODELS.build(dict(type='DistillationKLLoss', temperature=t))
    assert loss(student, teacher).item() == pytest.approx(expected, rel=1e-5)
    assert expected > 0.1
    weighted = MODELS.build(dict(type='DistillationKLLoss', temperature=t, loss_weight=0.3))
    assert weighted(student, teacher).item() == pytest.approx(0.3 * expected, rel=1e-5)
    assert loss(teacher, teacher).item() == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError, match='differ in shape'):
        loss(student, teacher[:, :2])
    with pytest.raises(ValueError, match='temperature=0'):
        MODELS.build(dict(type='DistillationKLLoss', temperature=0))


def test_teacher_frozen_in_eval_mode_without_gradients(teacher_files):
    model = build_kd(teacher_files)
    teacher_before = copy.deepcopy(model.teacher.state_dict())
    model.init_weights()  # what the runner does first: must leave the loaded teacher alone
    for k, v in model.teacher.state_dict().items():
        assert torch.equal(v, teacher_before[k]), k
    model.train()
    assert model.training and model.backbone.training and not model.teacher.training
    assert not any(m.training for m in model.teacher.modules())
    assert not any(p.requires_grad for p in model.teacher.parameters())

    x = torch.randn(4, 3, 32, 32)
    losses = model(x, samples([0, 1, 2, 3]), mode='loss')
    assert set(losses) >= {'loss_cls', 'loss_kd'} and losses['loss_kd'].item() > 0
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    assert all(p.grad is not None for p in model.head.parameters())
    assert model.backbone.features[0][0].weight.grad.abs().sum() > 0
    for k, v in model.teacher.state_dict().items():  # a training forward does not update BN statistics
        assert torch.equal(v, teacher_before[k]), k


def test_alpha_weights_task_and_distillation_losses(teacher_files):
    x, data = torch.randn(4, 3, 32, 32), samples([0, 1, 2, 3])
    only_task = build_kd(teacher_files, alpha=0.0).eval()
    task = only_task.head.loss(only_task.extract_feat(x), data)['loss']
    losses = only_task.loss(x, data)
    assert losses['loss_cls'].item() == pytest.approx(task.item()) and losses['loss_kd'].item() == 0
    only_kd = build_kd(teacher_files, alpha=1.0).eval()
    losses = only_kd.loss(x, data)
    logits, teacher_logits = only_kd(x, mode='tensor'), only_kd.teacher(x, mode='tensor')
    expected = MODELS.build(dict(type='DistillationKLLoss', temperature=2.0))(logits, teacher_logits)
    assert losses['loss_cls'].item() == 0 and losses['loss_kd'].item() == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(ConfigError, match='alpha=1.5'):
        build_kd(teacher_files, alpha=1.5)


def test_predict_and_tensor_are_the_students(teacher_files):
    model = build_kd(teacher_files).eval()
    student = MODELS.build(classifier_cfg(0.1, 4)).eval()
    student.load_state_dict(model.state_dict(), strict=True)

    def fail(*args):
        raise AssertionError('the teacher ran outside training')

    model.teacher.register_forward_pre_hook(fail)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x, mode='tensor'), student(x, mode='tensor'))
        got = model(x, samples([0, 1, 2]), mode='predict')
        want = student(x, samples([0, 1, 2]), mode='predict')
    for a, b in zip(got, want):
        assert torch.equal(a.pred_score, b.pred_score) and torch.equal(a.pred_label, b.pred_label)


def test_checkpoint_holds_the_student_only(teacher_files, tmp_path):
    model = build_kd(teacher_files)
    student = MODELS.build(classifier_cfg(0.1, 4))
    state = model.state_dict()
    assert set(state) == set(student.state_dict())
    assert not any(k.startswith('teacher.') for k in state)
    path = str(tmp_path / 'kd.pth')
    torch.save(dict(state_dict=state, meta=dict()), path)
    load_checkpoint(student, path, map_location='cpu', strict=True, logger='silent')  # the plain student loads it
    for k, v in student.state_dict().items():
        assert torch.equal(v, state[k]), k
    # and the distillation model resumes from it (strictly), keeping the teacher it loaded
    other = build_kd(teacher_files)
    teacher_before = copy.deepcopy(other.teacher.state_dict())
    load_checkpoint(other, path, map_location='cpu', strict=True, logger='silent')
    assert torch.equal(other.head.fc.weight, model.head.fc.weight)
    for k, v in other.teacher.state_dict().items():
        assert torch.equal(v, teacher_before[k]), k


def test_teacher_checkpoint_errors(teacher_files, tmp_path):
    config, checkpoint = teacher_files
    with pytest.raises(ConfigError, match=r"teacher_checkpoint='/nowhere/t.pth': no such file.*train the teacher"):
        build_kd(teacher_files, teacher_checkpoint='/nowhere/t.pth')
    model = build_kd(teacher_files, teacher_checkpoint=osp.dirname(checkpoint))  # a work dir: its best_*.pth
    assert torch.equal(model.teacher.head.fc.weight, torch.load(checkpoint)['state_dict']['head.fc.weight'])
    with pytest.raises(ConfigError, match='no best_'):
        build_kd(teacher_files, teacher_checkpoint=str(tmp_path))
    with pytest.raises(ConfigError, match='teacher_config=.*not found'):
        build_kd(teacher_files, teacher_config=str(tmp_path / 'missing.py'))
    with pytest.raises(ConfigError, match='num_classes=4 but the student has num_classes=3'):
        cfg = classifier_cfg(0.1, 3)
        cfg.update(type='KnowledgeDistillationClassifier', teacher_config=config, teacher_checkpoint=checkpoint)
        MODELS.build(resolve_teacher(cfg))
    # a checkpoint of another model (a teacher config overridden to 3 classes): named, with the fix
    with pytest.raises(ConfigError, match='does not fit the model of.*size mismatch'):
        build_kd(teacher_files, teacher_cfg_options={'num_classes': 3})


def test_distillation_config(teacher_files, tmp_path):
    register_all_modules()
    teacher = MODELS.build(load_config(osp.join(REPO, 'configs/classification/mobilenetv2_1.0_digits.py')).model)
    path = str(tmp_path / 'teacher.pth')
    torch.save(dict(state_dict=teacher.state_dict()), path)
    cfg = load_config(KD_CONFIG, {'teacher_checkpoint': path})
    assert cfg.model.teacher_checkpoint == path and cfg.model.type == 'KnowledgeDistillationClassifier'
    model = MODELS.build(resolve_teacher(cfg.model))
    assert model.backbone.widen_factor == 0.1 and model.teacher.backbone.widen_factor == 1.0
    assert torch.equal(model.teacher.head.fc.weight, teacher.head.fc.weight)
    # num_classes reaches the teacher's config too, so a 10-class teacher checkpoint no longer fits
    cfg = load_config(KD_CONFIG, {'teacher_checkpoint': path, 'num_classes': 5})
    assert cfg.model.teacher_cfg_options == {'num_classes': 5} and cfg.model.head.num_classes == 5
    with pytest.raises(ConfigError, match='does not fit the model of'):
        MODELS.build(resolve_teacher(cfg.model))
    # testing and export build the student alone: no teacher checkpoint needed, and loss says what is missing
    student = MODELS.build(cfg.model)
    assert student.teacher is None and set(student.state_dict()) == set(model.state_dict())
    with pytest.raises(ConfigError, match='built without its teacher.*resolve_teacher'):
        student.loss(torch.randn(2, 3, 32, 32), samples([0, 1]))
