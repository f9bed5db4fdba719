"""The throughput changes keep results: cached decoding, box-free colour runs, automatic worker count."""
import copy
import os

import albumentations as A
import cv2
import numpy as np
import pytest
from mmengine.registry import init_default_scope

from sscma.registry import TRANSFORMS
from sscma.utils import load_config
from sscma.utils.config import auto_num_workers
from sscma.utils.errors import ConfigError

init_default_scope('sscma')

HEAD = [dict(type='LoadImage'), dict(type='mmdet.LoadAnnotations', with_bbox=True),
        dict(type='mmdet.Resize', scale=(96, 96), keep_ratio=False)]


def _sample(path, idx=0):
    """A data_info as DetectionDataset gives it, for a 160x120 image with one box cut by the border."""
    return dict(img_path=str(path), sample_idx=idx, width=160, height=120,
                instances=[dict(bbox=[120.0, 30.0, 170.0, 70.0], bbox_label=1, ignore_flag=0),
                           dict(bbox=[10.0, 20.0, 40.0, 60.0], bbox_label=0, ignore_flag=0)])


@pytest.fixture
def image_file(tmp_path):
    path = tmp_path / 'photo.jpg'
    rng = np.random.default_rng(0)
    cv2.imwrite(str(path), rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    return path


def test_cached_equals_uncached_and_survives_the_file(image_file):
    cached = TRANSFORMS.build(dict(type='CachedTransforms', transforms=HEAD))
    plain = [TRANSFORMS.build(t) for t in HEAD]
    expected = _sample(image_file)
    for t in plain:
        expected = t(expected)
    first = cached(_sample(image_file))
    assert first['img'].shape == (96, 96, 3) and first['scale_factor'] == pytest.approx((0.6, 0.8))
    first['img'][:] = 0  # a later transform working in place must not reach the cache
    os.remove(image_file)  # the second visit does not read the file
    second = cached(_sample(image_file))
    np.testing.assert_array_equal(second['img'], expected['img'])
    np.testing.assert_allclose(second['gt_bboxes'].numpy(), expected['gt_bboxes'].numpy())
    assert cached.cached_bytes >= 96 * 96 * 3


def test_cached_packed_sample_is_a_fresh_copy(image_file):
    """PackDetInputs inside the cache: the same sample as packing every time, and changing what comes out
    (as the data preprocessor and the batch augments do) never reaches the cache."""
    pack = dict(type='mmdet.PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
    cached = TRANSFORMS.build(dict(type='CachedTransforms', transforms=HEAD + [pack]))
    expected = _sample(image_file)
    for t in [TRANSFORMS.build(t) for t in HEAD + [pack]]:
        expected = t(expected)
    first = cached(_sample(image_file))
    first['inputs'][:] = 0
    sample = first['data_samples']
    sample.set_metainfo(dict(batch_input_shape=(96, 96)))
    sample.gt_instances.bboxes.tensor[:] = -1
    sample.gt_instances.labels[:] = 7
    sample.ignored_instances = sample.ignored_instances[:0]
    second = cached(_sample(image_file))
    assert second['data_samples'] is not sample and second['data_samples'].gt_instances is not sample.gt_instances
    np.testing.assert_array_equal(second['inputs'].numpy(), expected['inputs'].numpy())
    got, want = second['data_samples'], expected['data_samples']
    assert 'batch_input_shape' not in got.metainfo and got.metainfo == want.metainfo
    assert got.scale_factor == pytest.approx((0.6, 0.8))  # 160x120 -> 96x96
    np.testing.assert_allclose(got.gt_instances.bboxes.numpy(), want.gt_instances.bboxes.numpy())
    assert type(got.gt_instances.bboxes) is type(want.gt_instances.bboxes) and got.gt_instances.bboxes.box_dim == 4
    assert got.gt_instances.labels.tolist() == want.gt_instances.labels.tolist() == [1, 0]
    assert len(got.ignored_instances) == len(want.ignored_instances)


def test_albumentations_after_the_cached_pack_is_named(image_file):
    """The detection and classification configs pack inside the cache: a user's Albumentations step appended
    after it says where it belongs instead of failing with a KeyError."""
    step = TRANSFORMS.build(dict(type='Albumentations', transforms=[dict(type='HorizontalFlip', p=1.0)]))
    pack = dict(type='mmdet.PackDetInputs')
    packed = TRANSFORMS.build(dict(type='CachedTransforms', transforms=HEAD + [pack]))(_sample(image_file))
    with pytest.raises(ConfigError, match=r"no 'img'.*PackDetInputs, mmpretrain.PackInputs\) out of CachedTransforms"):
        step(packed)
    cls_pipeline = load_config('configs/classification/mobilenetv2_0.35_digits.py').train_dataloader.dataset.pipeline
    cached = TRANSFORMS.build(cls_pipeline[0])
    packed = cached(dict(img_path=str(image_file), sample_idx=0, gt_label=1))
    assert tuple(packed['inputs'].shape) == (3, 32, 32)  # the 160x120 file resized to the network input
    with pytest.raises(ConfigError, match=r"no 'img'.*mmpretrain.PackInputs"):
        step(packed)


def test_cache_off_and_budget(image_file):
    off = TRANSFORMS.build(dict(type='CachedTransforms', transforms=HEAD, max_mb=0))
    off(_sample(image_file))
    assert off.cached_bytes == 0
    os.remove(image_file)
    assert off(_sample(image_file)) is None  # read again: the unreadable file is skipped (LoadImage policy)
    with pytest.raises(ConfigError, match='max_mb'):
        TRANSFORMS.build(dict(type='CachedTransforms', transforms=HEAD, max_mb=-1))
    with pytest.raises(ConfigError, match='non-empty list'):
        TRANSFORMS.build(dict(type='CachedTransforms', transforms=[]))


def test_box_free_runs_match_one_albumentations_compose(image_file):
    """Deterministic transforms (p=1, fixed ranges): the wrapper's split into runs changes nothing."""
    transforms = [dict(type='Affine', scale=(1.15, 1.15), translate_px=(7, 7), rotate=(8, 8), p=1.0),
                  dict(type='HorizontalFlip', p=1.0),
                  dict(type='RandomBrightnessContrast', brightness_limit=(0.1, 0.1), contrast_limit=(0.2, 0.2), p=1.0),
                  dict(type='Affine', scale=(0.9, 0.9), p=1.0)]
    wrapper = TRANSFORMS.build(dict(type='Albumentations', transforms=transforms))
    assert [moves for moves, _ in wrapper.with_boxes] == [True, False, True]
    from sscma.datasets.transforms.albumentations import build_albu
    reference = A.Compose([build_albu(t) for t in transforms],
                          bbox_params=A.BboxParams(format='pascal_voc', label_fields=['box_index'], min_visibility=0.3,
                                                   min_width=1, min_height=1, clip=True))
    results = _sample(image_file)
    for t in [TRANSFORMS.build(t) for t in HEAD]:
        results = t(results)
    boxes = results['gt_bboxes'].numpy().clip(0, 96)
    ref = reference(image=results['img'], bboxes=boxes, box_index=np.arange(len(boxes)))
    out = wrapper(copy.deepcopy(results))
    np.testing.assert_array_equal(out['img'], ref['image'])
    np.testing.assert_allclose(out['gt_bboxes'].numpy(), np.asarray(ref['bboxes']).reshape(-1, 4), atol=1e-4)
    np.testing.assert_array_equal(out['gt_bboxes_labels'], results['gt_bboxes_labels'][np.asarray(ref['box_index'])])


def test_auto_workers():
    assert auto_num_workers(cores=1) == 0 and auto_num_workers(cores=2) == 0 and auto_num_workers(cores=8) == 2
    cfg = load_config('configs/fomo/fomo_mobnetv2.py')
    auto = auto_num_workers()
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert cfg[key].num_workers == auto and cfg[key].persistent_workers == (auto > 0)
    cfg = load_config('configs/classification/mobilenetv2_0.35_digits.py', {'workers': 1})
    assert cfg.train_dataloader.num_workers == 1 and cfg.train_dataloader.persistent_workers
    with pytest.raises(ConfigError, match="'auto'"):
        load_config('configs/fomo/fomo_mobnetv2.py', {'workers': 'many'})


@pytest.mark.parametrize('options', [{}, {'max_epochs': 3}])
def test_config_text_is_not_reformatted_at_each_checkpoint(options):
    """mmengine writes cfg.pretty_text into every checkpoint; yapf formatting took 0.4 s per save."""
    from mmengine.config import Config
    cfg = load_config('configs/fomo/fomo_mobnetv2.py', options)
    assert cfg._format_python_code is False
    back = Config.fromstring(cfg.pretty_text, '.py')
    assert back.model == cfg.model and back.train_cfg == cfg.train_cfg
