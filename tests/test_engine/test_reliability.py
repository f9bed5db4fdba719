import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.fileio import get_file_backend
from torch import nn

from sscma.engine import AtomicLocalBackend
from sscma.engine.hooks import FreezeBackboneHook, NonFiniteLossHook, TrainingDiverged
from sscma.registry import TRANSFORMS
from sscma.utils import DatasetError


def test_atomic_backend_replaces_whole_file_or_nothing(tmp_path):
    backend = get_file_backend(str(tmp_path), backend_args=dict(backend='atomic_local'))
    assert isinstance(backend, AtomicLocalBackend)
    target = tmp_path / 'epoch_1.pth'
    backend.put(b'good', target)
    assert target.read_bytes() == b'good'
    with pytest.raises(TypeError):
        backend.put('not bytes', target)  # fails while writing
    assert target.read_bytes() == b'good'  # the old file is intact
    assert os.listdir(tmp_path) == ['epoch_1.pth']  # no temporary file left


def test_non_finite_loss_stops_and_names_last_checkpoint(tmp_path):
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_2.pth'))
    runner = SimpleNamespace(work_dir=str(tmp_path), epoch=2)
    hook = NonFiniteLossHook()
    hook.after_train_iter(runner, 0, outputs=dict(loss=torch.tensor(0.5)))
    with pytest.raises(TrainingDiverged, match=r'became nan at epoch 3, iteration 5.*epoch_2.pth'):
        hook.after_train_iter(runner, 4, outputs=dict(loss=torch.tensor(float('nan'))))


def test_load_image_policy(tmp_path):
    broken = tmp_path / 'broken.jpg'
    broken.write_bytes(b'\xff\xd8\xff\xe0 truncated')
    skip = TRANSFORMS.build(dict(type='LoadImage'))
    assert skip(dict(img_path=str(broken))) is None
    fail = TRANSFORMS.build(dict(type='LoadImage', on_error='fail'))
    with pytest.raises(DatasetError, match='broken.jpg'):
        fail(dict(img_path=str(broken)))
    with pytest.raises(DatasetError, match='missing.png'):
        fail(dict(img_path=str(tmp_path / 'missing.png')))
    good = tmp_path / 'good.png'
    import cv2
    cv2.imwrite(str(good), np.zeros((5, 7, 3), np.uint8))
    assert fail(dict(img_path=str(good)))['img'].shape == (5, 7, 3)


class _Net(nn.Module):

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
        self.head = nn.Linear(4, 2)


def test_freeze_backbone_for_n_epochs():
    model = _Net()
    hook = FreezeBackboneHook(freeze_epochs=2)
    logs = []
    runner = SimpleNamespace(model=model, epoch=0, logger=SimpleNamespace(info=logs.append))
    model.train()
    hook.before_train_iter(runner, 0)
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert all(p.requires_grad for p in model.head.parameters())
    assert not model.backbone[1].training  # BatchNorm statistics frozen too
    runner.epoch = 2
    model.train()
    hook.before_train_iter(runner, 0)
    assert all(p.requires_grad for p in model.backbone.parameters()) and model.backbone[1].training
    assert logs and 'unfrozen at epoch 3' in logs[0]
