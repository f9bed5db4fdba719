"""ValLossHook's inputs: each task's loss pipeline puts the ground truth in the network input's coordinates
(detectors: boxes resized with the image, on non-square files at a non-square input), or has none."""
import json
import os.path as osp

import numpy as np
import pytest

from sscma.registry import DATASETS, MODELS
from sscma.tasks import task_of
from sscma.tasks.detection import annotations_before_geometry
from sscma.utils import load_config, register_all_modules

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def config(name, **options):
    register_all_modules()
    return load_config(osp.join(REPO, 'configs', name), options)


def test_annotations_move_before_the_resize():
    pipeline = [dict(type='LoadImage'), dict(type='mmdet.Resize', scale=(96, 96)),
                dict(type='mmdet.LoadAnnotations', with_bbox=True), dict(type='mmdet.PackDetInputs')]
    moved = annotations_before_geometry(dict(type='DetectionDataset', pipeline=pipeline, test_mode=True))
    assert [s['type'] for s in moved['pipeline']] == [
        'LoadImage', 'mmdet.LoadAnnotations', 'mmdet.Resize', 'mmdet.PackDetInputs']
    assert not moved['test_mode'] and not moved['filter_cfg']['filter_empty_gt']  # every image kept
    assert [s['type'] for s in pipeline][2] == 'mmdet.LoadAnnotations'  # the config's own list is untouched
    assert annotations_before_geometry(dict(pipeline=[dict(type='LoadImage'), dict(type='PackDetInputs')])) is None


@pytest.mark.parametrize('name', ['fomo/fomo_mobnetv2.py', 'rtmdet/rtmdet_nano_96.py'])
def test_detector_loss_samples_hold_boxes_in_input_pixels(name, roboflow_root):
    """112x84 files read at a 64x48 input: every box is the file's box times (64/112, 48/84)."""
    cfg = config(name, data_root=roboflow_root, imgsz=(64, 48))
    model = MODELS.build(cfg.model)
    dataset = DATASETS.build(task_of(model).loss_dataset(cfg.val_dataloader.dataset.to_dict()))
    coco = json.load(open(osp.join(roboflow_root, 'valid', '_annotations.coco.json')))
    checked = 0
    for i in range(len(dataset)):
        sample = dataset[i]['data_samples']
        name_of = osp.basename(sample.img_path)
        image = next(im for im in coco['images'] if im['file_name'] == name_of)
        want = np.array([[a['bbox'][0], a['bbox'][1], a['bbox'][0] + a['bbox'][2], a['bbox'][1] + a['bbox'][3]]
                         for a in coco['annotations'] if a['image_id'] == image['id']]).reshape(-1, 4)
        want = want * np.array([64 / 112, 48 / 84, 64 / 112, 48 / 84])
        got = np.asarray(getattr(sample.gt_instances.bboxes, 'tensor', sample.gt_instances.bboxes))
        assert sample.img_shape == (48, 64)
        np.testing.assert_allclose(np.sort(got, 0), np.sort(want, 0), rtol=1e-5, atol=1e-4)
        checked += len(want)
    assert checked == 6 and len(dataset) == 4  # the empty image too


def test_tasks_without_a_validation_loss_say_so():
    pose = config('pose/yoloxpose_nano_160.py')
    assert task_of(MODELS.build(pose.model)).loss_dataset(pose.val_dataloader.dataset.to_dict()) is None
    cls = config('classification/mobilenetv2_0.35_digits.py')
    dataset = cls.val_dataloader.dataset.to_dict()
    assert task_of(MODELS.build(cls.model)).loss_dataset(dataset) == dataset  # its batches as they are


def test_means_and_curves_of_the_validation_loss(tmp_path):
    from sscma.engine.hooks import ValLossHook
    from sscma.visualization.plots import plot_training_curves
    hook = ValLossHook()
    hook.sums = {'val_loss_cls': (1.0, 2), 'val_loss_bbox': (3.0, 3)}
    assert hook._means() == {'val_loss_bbox': 1.0, 'val_loss_cls': 0.5}  # per batch, one process
    scalars = tmp_path / 'scalars.json'
    with open(scalars, 'w') as f:  # logged by iteration (no epoch key), and by epoch
        val = {'fomo/f1': 0.2, 'val_loss': 0.9, 'step': 1}
        for records in ([{'loss': 1.0, 'lr': 0.1, 'step': 10}, val],
                        [{'loss': 0.8, 'lr': 0.1, 'epoch': 1, 'step': 10}, val]):
            f.seek(0)
            f.truncate()
            f.write('\n'.join(json.dumps(r) for r in records))
            f.flush()
            assert plot_training_curves(str(scalars), str(tmp_path / 'curves.png')) == str(tmp_path / 'curves.png')
