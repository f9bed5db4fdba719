"""Batch augmentations against albumentations at fixed parameters, and boxes following the pixels, on
non-square images whose size is not the default 96x96 network input."""
import math

import albumentations as A
import cv2
import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

from sscma.models.data_preprocessors import (BatchAffine, BatchBlurOrNoise, BatchBrightnessContrast,
                                             BatchHorizontalFlip, BatchHueSaturationValue, BatchRandomResizedCrop,
                                             ClsDataPreprocessor, DetDataPreprocessor)
from sscma.models.data_preprocessors.batch_augments import affine_matrices, resize_crops, warp_affine
from sscma.models.data_preprocessors.geometry import affine_boxes, filter_boxes
from sscma.models.data_preprocessors.colour_augments import shift_hsv_batch
from sscma.registry import MODELS
from sscma.utils.errors import ConfigError


def smooth_image(h, w, seed=0):
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3)).astype(np.uint8), (5, 5), 2)


def as_batch(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1)[None].float()


def as_image(x: torch.Tensor) -> np.ndarray:
    return x[0].permute(1, 2, 0).numpy()


BOXES = np.array([[5, 6, 30, 40], [90, 60, 119, 88], [0, 0, 10, 10], [50, 20, 70, 30], [100, 2, 118, 20]],
                 np.float32)


@pytest.mark.parametrize('hw', [(88, 120), (120, 88)])
@pytest.mark.parametrize('sx,sy,tx,ty,rot', [(1.1, 0.9, 0.05, -0.08, 7.0), (0.8, 1.2, -0.1, 0.1, -10.0),
                                              (1.2, 1.2, 0.1, 0.1, 3.0), (1.0, 1.0, 0.0, 0.0, 0.0)])
def test_affine_matches_albumentations(hw, sx, sy, tx, ty, rot):
    h, w = hw
    img = smooth_image(h, w)
    boxes = BOXES.copy()
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
    boxes = boxes[(boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])]
    ref = A.Compose([A.Affine(scale={'x': (sx, sx), 'y': (sy, sy)}, translate_percent={'x': (tx, tx), 'y': (ty, ty)},
                              rotate=(rot, rot), p=1)],
                    bbox_params=A.BboxParams(format='pascal_voc', label_fields=['index'], min_visibility=0.3,
                                             min_width=1, min_height=1, clip=True))(
                                                 image=img, bboxes=boxes, index=np.arange(len(boxes)))

    matrix = affine_matrices(sx, sy, int(tx * w), int(ty * h), math.radians(rot), h, w)
    out = as_image(warp_affine(as_batch(img), matrix))
    diff = np.abs(out - ref['image'].astype(np.float32))
    assert diff.mean() < 0.5 and diff.max() <= 4  # cv2 interpolates in 1/32 px fixed point and rounds to uint8
    moved, keep = filter_boxes(affine_boxes(boxes.astype(np.float64), matrix[0]), h, w, 0.3, 1.0)
    assert np.flatnonzero(keep).tolist() == list(ref['index'])
    if keep.any():
        np.testing.assert_allclose(moved[keep], np.asarray(ref['bboxes']), atol=1e-3)


@pytest.mark.parametrize('hw', [(40, 56), (56, 40)])
@pytest.mark.parametrize('shx,shy,rot', [(5.0, -3.0, 8.0), (-5.0, 5.0, -10.0), (4.0, 0.0, 0.0)])
def test_shear_matches_albumentations(hw, shx, shy, rot):
    h, w = hw
    img = smooth_image(h, w, seed=4)
    ref = A.Affine(shear={'x': (shx, shx), 'y': (shy, shy)}, rotate=(rot, rot), p=1)(image=img)['image']

    # albumentations negates the shear it draws (BatchAffine.sample_matrices does the same)
    matrix = affine_matrices(1.0, 1.0, 0.0, 0.0, math.radians(rot), h, w, -math.radians(shx), -math.radians(shy))
    diff = np.abs(as_image(warp_affine(as_batch(img), matrix)) - ref.astype(np.float32))
    assert diff.mean() < 0.5 and diff.max() <= 4
    # and the module draws within the range and shears: a sheared image differs from the rotation alone
    torch.manual_seed(0)
    sheared, _ = BatchAffine(scale=1.0, translate_percent=0.0, rotate=0, shear=(4, 5), p=1)(as_batch(img), [None])
    assert (sheared - as_batch(img)).abs().mean() > 1


def mmpretrain_crop(img, x0, y0, cw, ch):
    """mmpretrain's RandomResizedCrop at a fixed crop: mmcv.imcrop then mmcv.imresize (cv2 bilinear)."""
    import mmcv
    h, w = img.shape[:2]
    return mmcv.imresize(mmcv.imcrop(img, np.array([x0, y0, x0 + cw - 1, y0 + ch - 1])), (w, h))


@pytest.mark.parametrize('hw', [(40, 56), (56, 40)])
def test_random_resized_crop_matches_mmpretrain_at_fixed_crops(hw):
    h, w = hw
    img = smooth_image(h, w, seed=5)
    crops = [(0, 0, w, h), (0, 0, w - 9, h - 5), (w - 30, h - 33, 30, 33), (7, 4, w - 12, h - 10)]
    out = resize_crops(as_batch(img).repeat(len(crops), 1, 1, 1), np.array(crops))
    for k, (x0, y0, cw, ch) in enumerate(crops):
        ref = mmpretrain_crop(img, x0, y0, cw, ch).astype(np.float32)
        diff = np.abs(out[k].permute(1, 2, 0).numpy() - ref)
        # a crop edge on the image's edge repeats it as cv2 does; one inside reads the image's own pixels
        # beyond it where cv2 repeats the crop's edge: compare the outermost output pixels only at image edges
        inner = diff[0 if y0 == 0 else 1:h if y0 + ch == h else h - 1, 0 if x0 == 0 else 1:w if x0 + cw == w else w - 1]
        assert inner.mean() < 0.5 and inner.max() <= 2, (x0, y0, cw, ch)
    np.testing.assert_allclose(out[0].permute(1, 2, 0).numpy(), img, atol=1e-3)  # the whole image: unchanged


def test_random_resized_crop_draws_as_mmpretrain():
    from mmpretrain.datasets.transforms import RandomResizedCrop
    h, w = 48, 64
    ranges = dict(crop_ratio_range=(0.3, 1.0), aspect_ratio_range=(0.7, 1.6))
    ours = BatchRandomResizedCrop(**ranges).sample_crops(4000, h, w)
    x0, y0, cw, ch = ours.T
    assert (x0 >= 0).all() and (y0 >= 0).all() and (x0 + cw <= w).all() and (y0 + ch <= h).all()
    assert np.array_equal(ours, ours.round())
    np.random.seed(0)
    theirs = RandomResizedCrop(scale=(w, h), **ranges)
    ref = np.array([theirs.rand_crop_params.__wrapped__(theirs, np.zeros((h, w, 3))) for _ in range(4000)],
                   np.float64)  # (offset_h, offset_w, target_h, target_w)
    for a, b in ((cw, ref[:, 3]), (ch, ref[:, 2]), (x0, ref[:, 1]), (y0, ref[:, 0])):
        assert abs(a.mean() - b.mean()) < 0.03 * w, (a.mean(), b.mean())
        assert abs(a.std() - b.std()) < 0.03 * w
    # nothing fits (a whole 4:3 image at aspect 2-3): mmpretrain's central crop of the nearest aspect ratio
    none_fit = BatchRandomResizedCrop((1.0, 1.0), (2.0, 3.0)).sample_crops(3, h, w)
    assert none_fit.tolist() == [[0.0, 8.0, 64.0, 32.0]] * 3


def test_flip_brightness_contrast_blur_match_albumentations():
    img = smooth_image(64, 48, seed=1)
    x = as_batch(img)
    sample = DetDataSample(gt_instances=InstanceData(bboxes=torch.tensor([[3., 4., 20., 30.]]),
                                                     labels=torch.tensor([1])))
    flipped, [flipped_sample] = BatchHorizontalFlip(p=1)(x.clone(), [sample])
    ref = A.Compose([A.HorizontalFlip(p=1)], bbox_params=A.BboxParams(format='pascal_voc', label_fields=['l']))(
        image=img, bboxes=np.array([[3., 4., 20., 30.]]), l=[1])
    assert np.array_equal(as_image(flipped), ref['image'].astype(np.float32))
    np.testing.assert_allclose(flipped_sample.gt_instances.bboxes.numpy(), ref['bboxes'], atol=1e-5)

    ref = A.RandomBrightnessContrast(brightness_limit=(0.2, 0.2), contrast_limit=(-0.2, -0.2), p=1)(image=img)
    out, _ = BatchBrightnessContrast((0.2, 0.2), (-0.2, -0.2), p=1)(x.clone(), [None])
    assert np.abs(as_image(out) - ref['image']).max() <= 1  # albumentations rounds to uint8

    for sigma in (0.5, 1.5, 3.0):
        ref = A.GaussianBlur(blur_limit=(3, 3), sigma_limit=(sigma, sigma), p=1)(image=img)['image']
        out = BatchBlurOrNoise(3, (sigma, sigma), p=1).blur(x.clone())
        assert np.abs(as_image(out) - ref).max() <= 1


@pytest.mark.parametrize('shifts', [(10, 20, 15), (-10, -20, -15), (5, 0, 0), (0, 40, 0)])
def test_hue_saturation_value_matches_albumentations(shifts):
    img = smooth_image(40, 72, seed=2)
    img[:5, :5] = 128  # grey pixels: saturation stays 0
    hue, sat, val = shifts
    ref = A.HueSaturationValue(hue_shift_limit=(hue, hue), sat_shift_limit=(sat, sat), val_shift_limit=(val, val),
                               p=1)(image=img)['image'].astype(np.float32)
    out, _ = BatchHueSaturationValue((hue, hue), (sat, sat), (val, val), p=1)(as_batch(img), [None])
    assert np.array_equal(as_image(out), ref)  # as albumentations' shift_hsv, on the same uint8 pixels
    assert np.ptp(as_image(out)[:5, :5], axis=-1).max() < 1e-3
    # float pixels (after BatchAffine) are rounded to uint8 first, as albumentations' pipeline holds them
    out, _ = BatchHueSaturationValue((hue, hue), (sat, sat), (val, val), p=1)(as_batch(img) + 0.3, [None])
    assert np.array_equal(as_image(out), ref)
    # out of 0-255 or at a half: clamped, and rounded half to even as torch.round does
    x = torch.tensor([-3.0, -0.4, 0.5, 1.5, 2.5, 254.5, 255.4, 300.0]).repeat(3, 4, 1)[None]
    expected = x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    out, _ = BatchHueSaturationValue((hue, hue), (sat, sat), (val, val), p=1)(x, [None])
    assert np.array_equal(as_image(out), A.HueSaturationValue(
        hue_shift_limit=(hue, hue), sat_shift_limit=(sat, sat), val_shift_limit=(val, val),
        p=1)(image=expected[0])['image'].astype(np.float32))


def test_hue_saturation_value_per_image_shifts_match_shift_hsv():
    """A batch of images, each with its own shifts (one of them all zero: returned untouched, as shift_hsv
    does), equals albumentations' shift_hsv image by image."""
    from albumentations.augmentations.pixel.functional import shift_hsv
    rng = np.random.default_rng(4)
    images = np.stack([smooth_image(40, 72, seed=s) for s in range(6)])
    images[:, :4, :4] = 128
    images[1, -3:] = 0
    images[2, -3:] = 255
    hue, sat, val = rng.uniform(-20, 20, 6), rng.uniform(-40, 40, 6), rng.uniform(-30, 30, 6)
    sat[3], val[4] = 0.6, -0.8  # below one step: truncated to no shift, but still the HSV round trip
    hue[5] = sat[5] = val[5] = 0.0
    ref = np.stack([shift_hsv(img, h, s, v) for img, h, s, v in zip(images, hue, sat, val)])
    out = shift_hsv_batch(images.copy(), hue, sat, val)
    assert np.array_equal(out, ref)
    assert np.array_equal(out[5], images[5])
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    aug = BatchHueSaturationValue((-20, 20), (-40, 40), (-30, 30), p=0.5)
    torch.manual_seed(3)
    chosen = np.flatnonzero(torch.rand(6, dtype=torch.float64).numpy() < 0.5)
    shifts = [torch.rand(len(chosen), dtype=torch.float64).numpy() * 2 * lim - lim for lim in (20, 40, 30)]
    torch.manual_seed(3)
    out, _ = aug(x.clone(), [None] * 6)
    expected = x.clone()
    expected[chosen] = torch.from_numpy(shift_hsv_batch(images[chosen], *shifts)).permute(0, 3, 1, 2).float()
    assert 0 < len(chosen) < 6 and torch.equal(out, expected)


def test_grey_images_get_the_value_shift_only():
    x = torch.full((2, 1, 30, 50), 100.0)
    out, _ = BatchHueSaturationValue(10, 20, (15, 15), p=1)(x, [None, None])
    assert torch.allclose(out, torch.full_like(out, 115.0))


def test_noise_has_the_requested_std():
    x = torch.full((8, 3, 60, 40), 128.0)
    torch.manual_seed(0)
    aug = BatchBlurOrNoise(3, (1.0, 1.0), std_range=(0.04, 0.04), p=1)
    out, _ = aug(x.clone(), [None] * 8)
    changed = [(out[i] - 128).std().item() for i in range(8) if (out[i] - 128).abs().max() > 5]
    assert changed and all(abs(s - 0.04 * 255) < 0.1 * 0.04 * 255 for s in changed)


def scene_batch(n=6, h=72, w=104, seed=0):
    """Black images with one bright, label-coloured rectangle per object (some touching the border, one image
    empty), as mmdet's pipeline packs them (uint8 BGR CHW)."""
    rng = np.random.default_rng(seed)
    colours = {0: (0, 0, 255), 1: (0, 255, 0)}  # BGR: label 0 red, label 1 green
    inputs, samples = [], []
    for i in range(n):
        img = np.zeros((h, w, 3), np.uint8)
        boxes, labels = [], []
        for j in range(0 if i == 0 else rng.integers(1, 4)):  # object j in column j: no overlaps
            bw, bh = rng.integers(10, 24, 2)
            col = w // 3
            x1 = j * col + rng.integers(-4 if j == 0 else 0, col - bw + (4 if j == 2 else 1))
            y1 = rng.integers(-4, h - bh + 4)
            x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x1 + bw, w), min(y1 + bh, h)
            label = int(rng.integers(0, 2))
            img[y1:y2, x1:x2] = colours[label]
            boxes.append([x1, y1, x2, y2])
            labels.append(label)
        inputs.append(torch.from_numpy(img).permute(2, 0, 1).contiguous())
        sample = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), scale_factor=(1.0, 1.0)))
        sample.gt_instances = InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                                           labels=torch.tensor(labels, dtype=torch.int64))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def mixed_size_batch():
    """72x104 and 50x90 images in one batch: the preprocessor pads them to one size."""
    a, b = scene_batch(3), scene_batch(3, h=50, w=90, seed=1)
    return dict(inputs=a['inputs'] + b['inputs'], data_samples=a['data_samples'] + b['data_samples'])


@pytest.mark.parametrize('batch,divisor', [(scene_batch, 1), (scene_batch, 32), (mixed_size_batch, 1),
                                           (mixed_size_batch, 32)])
def test_without_augments_it_is_mmdets_preprocessor(batch, divisor):
    kwargs = dict(mean=[10.0, 20.0, 30.0], std=[50.0, 60.0, 70.0], bgr_to_rgb=True, pad_size_divisor=divisor)
    ours = DetDataPreprocessor(augments=[dict(type='BatchAffine', p=1)], **kwargs)
    theirs = MODELS.build(dict(type='mmdet.DetDataPreprocessor', **kwargs))
    for training in (False, True):
        if training:
            ours.augments = torch.nn.ModuleList()
        a, b = ours(batch(), training), theirs(batch(), training)
        assert torch.equal(a['inputs'], b['inputs'])
        for x, y in zip(a['data_samples'], b['data_samples']):
            assert x.metainfo == y.metainfo
            assert torch.equal(x.gt_instances.bboxes, y.gt_instances.bboxes)


def test_augments_see_pixels_and_the_output_is_normalised_once():
    """Augmenting before normalising: a flip of every image gives mmdet's normalised batch, mirrored."""
    kwargs = dict(mean=[10.0, 20.0, 30.0], std=[50.0, 60.0, 70.0], bgr_to_rgb=True)
    ours = DetDataPreprocessor(augments=[dict(type='BatchHorizontalFlip', p=1)], **kwargs)
    theirs = MODELS.build(dict(type='mmdet.DetDataPreprocessor', **kwargs))
    a, b = ours(scene_batch(), True), theirs(scene_batch(), True)
    torch.testing.assert_close(a['inputs'], b['inputs'].flip(-1))
    assert ours._enable_normalize  # restored after the un-normalised pass
    for x, y in zip(a['data_samples'], b['data_samples']):
        w = x.batch_input_shape[1]
        assert x.metainfo == y.metainfo and w == 104
        torch.testing.assert_close(x.gt_instances.bboxes[:, [2, 1, 0, 3]] * torch.tensor([-1, 1, -1, 1]) +
                                   torch.tensor([w, 0, w, 0]), y.gt_instances.bboxes)


def test_boxes_follow_the_pixels_and_keep_their_labels():
    torch.manual_seed(3)
    pre = DetDataPreprocessor(mean=[0.0] * 3, std=[255.0] * 3, bgr_to_rgb=True, augments=[
        dict(type='BatchAffine', scale=(0.7, 1.3), translate_percent=(-0.2, 0.2), rotate=(-15, 15), p=1),
        dict(type='BatchHorizontalFlip', p=1)])
    before = sum(len(s.gt_instances) for s in scene_batch(n=12)['data_samples'])
    out = pre(scene_batch(n=12), training=True)
    after = 0
    for img, sample in zip(out['inputs'] * 255, out['data_samples']):
        h, w = img.shape[1:]
        assert img.shape[1:] == (72, 104)
        for box, label in zip(sample.gt_instances.bboxes.tolist(), sample.gt_instances.labels.tolist()):
            after += 1
            x1, y1, x2, y2 = box
            assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
            inner = img[:, int(math.ceil(y1)):int(y2), int(math.ceil(x1)):int(x2)]
            channel = 0 if label == 0 else 1  # RGB after bgr_to_rgb: red, green
            bright = inner[channel] > 128
            assert bright.float().mean() > 0.3, (box, label)  # the object of that colour is in its box
    assert 0 < after <= before
    # with no augmentation probability, nothing moves
    pre_off = DetDataPreprocessor(mean=[0.0] * 3, std=[255.0] * 3, bgr_to_rgb=True,
                                  augments=[dict(type='BatchAffine', p=0.0), dict(type='BatchHorizontalFlip', p=0.0)])
    plain = MODELS.build(dict(type='mmdet.DetDataPreprocessor', mean=[0.0] * 3, std=[255.0] * 3, bgr_to_rgb=True))
    a, b = pre_off(scene_batch(), True), plain(scene_batch(), True)
    assert torch.allclose(a['inputs'], b['inputs'], atol=1e-6)


def test_a_box_pushed_out_is_dropped_with_its_label():
    sample = DetDataSample(gt_instances=InstanceData(bboxes=torch.tensor([[2., 2., 12., 12.], [40., 30., 50., 40.]]),
                                                     labels=torch.tensor([0, 1])))
    sample.ignored_instances = InstanceData(bboxes=torch.tensor([[0., 0., 5., 5.]]), labels=torch.tensor([1]))
    aug = BatchAffine(scale=(1.0, 1.0), translate_percent=(-0.2, -0.2), rotate=(0, 0), p=1)  # 12 px left, 9 px up
    _, [moved] = aug(torch.zeros(1, 3, 48, 64), [sample])
    assert moved.gt_instances.labels.tolist() == [1]
    np.testing.assert_allclose(moved.gt_instances.bboxes.numpy(), [[28., 21., 38., 31.]], atol=1e-4)
    assert len(moved.ignored_instances) == 0


@pytest.mark.parametrize('cfg, word', [(dict(type='BatchAffine', p=1.5), 'p=1.5'),
                                       (dict(type='BatchAffine', scale=(1.2, 0.8)), 'scale'),
                                       (dict(type='BatchBlurOrNoise', blur_ksize=4), 'blur_ksize=4')])
def test_bad_arguments_are_named(cfg, word):
    with pytest.raises(ConfigError, match=word.replace('(', r'\(')):
        MODELS.build(cfg)


def test_augments_need_tensor_boxes():
    with pytest.raises(ConfigError, match='boxtype2tensor=False'):
        DetDataPreprocessor(augments=[dict(type='BatchHorizontalFlip')], boxtype2tensor=False)


def digit_batch(n=5, h=40, w=56):
    """Class-folder samples as mmpretrain's pipeline packs them (uint8 BGR CHW, non-square)."""
    from mmpretrain.structures import DataSample
    inputs = [torch.from_numpy(smooth_image(h, w, seed=i)).permute(2, 0, 1).contiguous() for i in range(n)]
    return dict(inputs=inputs, data_samples=[DataSample().set_gt_label(i % 3) for i in range(n)])


def test_classifier_preprocessor_augments_pixels_and_normalises_once():
    kwargs = dict(num_classes=3, mean=[10.0, 20.0, 30.0], std=[50.0, 60.0, 70.0], to_rgb=True)
    theirs = MODELS.build(dict(type='mmpretrain.ClsDataPreprocessor', **kwargs))
    plain = ClsDataPreprocessor(**kwargs)
    flipping = ClsDataPreprocessor(augments=[dict(type='BatchHorizontalFlip', p=1)], **kwargs)
    for training in (False, True):
        a, b = plain(digit_batch(), training), theirs(digit_batch(), training)
        assert torch.equal(a['inputs'], b['inputs'])
    a, b = flipping(digit_batch(), True), theirs(digit_batch(), True)
    torch.testing.assert_close(a['inputs'], b['inputs'].flip(-1))
    assert [s.gt_label.item() for s in a['data_samples']] == [0, 1, 2, 0, 1]
    assert flipping._enable_normalize
    assert torch.equal(flipping(digit_batch(), False)['inputs'], b['inputs'])  # evaluation: no augments
    # the default classifier's augments keep the batch's shape and the 0-255 range before normalising
    cropping = ClsDataPreprocessor(augments=[dict(type='BatchRandomResizedCrop', crop_ratio_range=(0.5, 0.9)),
                                             dict(type='BatchAffine', scale=1.0, translate_percent=0.0,
                                                  rotate=(-10, 10), shear=(-5, 5), p=1)], **kwargs)
    out = cropping(digit_batch(), True)['inputs']
    assert out.shape == (5, 3, 40, 56) and not torch.allclose(out, b['inputs'])
    pixels = out * cropping.std + cropping.mean
    assert pixels.min() >= -1e-3 and pixels.max() <= 255 + 1e-3


@pytest.mark.parametrize('cfg, word', [
    (dict(type='BatchRandomResizedCrop', crop_ratio_range=(0.5, 1.5)), 'crop_ratio_range'),
    (dict(type='BatchRandomResizedCrop', aspect_ratio_range=(1.3, 0.7)), 'aspect_ratio_range'),
    (dict(type='BatchRandomResizedCrop', max_attempts=-1), 'max_attempts=-1')])
def test_bad_crop_arguments_are_named(cfg, word):
    with pytest.raises(ConfigError, match=word):
        MODELS.build(cfg)


def test_every_task_geometric_field_has_a_mover():
    from sscma.models.data_preprocessors.geometry import DENSE_FIELDS, GEOMETRIC_FIELDS
    from sscma.registry import TASKS
    TASKS.import_from_location()
    for name, cls in TASKS.module_dict.items():
        assert set(cls.geometric_fields) <= set(GEOMETRIC_FIELDS) | set(DENSE_FIELDS), (name, cls.geometric_fields)


def test_keypoints_move_with_the_flip_and_swap_sides():
    """A mirror moves every keypoint to x -> w - x and swaps the pairs of flip_indices; labels stay."""
    from mmengine.structures import InstanceData
    from mmpose.structures import PoseDataSample

    from sscma.models.data_preprocessors.geometry import move_geometry
    s = PoseDataSample(metainfo=dict(flip_indices=[1, 0, 2]))
    s.gt_instances = InstanceData(keypoints=np.array([[[10., 5], [30., 6], [20., 40]]]), labels=torch.tensor([0]))
    mirror = np.array([[[-1.0, 0.0, 64], [0.0, 1.0, 0.0]]])
    move_geometry([s], [0], mirror, 48, 64)
    assert np.allclose(s.gt_instances.keypoints, [[[34., 6], [54., 5], [44., 40]]])
    assert s.gt_instances.labels.tolist() == [0]


def test_random_resized_crop_moves_boxes_and_drops_those_outside():
    """The crop's map moves boxes as it moves pixels; a box with no pixel in the crop leaves with its label."""
    from mmengine.structures import InstanceData
    from mmdet.structures import DetDataSample

    from sscma.models.data_preprocessors.batch_augments import crop_matrices
    from sscma.models.data_preprocessors.geometry import move_geometry
    s = DetDataSample()
    s.gt_instances = InstanceData(bboxes=torch.tensor([[10., 10, 20, 20], [60., 60, 70, 70]]),
                                  labels=torch.tensor([1, 2]))
    matrices = crop_matrices(np.array([[0, 0, 32, 32]]), 64, 64)  # the top-left quarter, scaled x2
    move_geometry([s], [0], matrices, 64, 64, (0.0, 1.0))
    assert s.gt_instances.bboxes.tolist() == [[20., 20, 40, 40]] and s.gt_instances.labels.tolist() == [1]


def test_fields_in_some_instance_sets_only_and_visibility_follows_the_swap():
    """Boxes in both sets and keypoints in one: each moves where it is; visibility is swapped with its point."""
    from mmengine.structures import InstanceData
    from mmpose.structures import PoseDataSample

    from sscma.models.data_preprocessors.geometry import move_geometry
    s = PoseDataSample(metainfo=dict(flip_indices=[1, 0]))
    s.gt_instances = InstanceData(bboxes=torch.tensor([[0., 0, 10, 10]]), keypoints=np.array([[[2., 2], [8., 8]]]),
                                  keypoints_visible=np.array([[1.0, 0.0]]))
    s.ignored_instances = InstanceData(bboxes=torch.tensor([[20., 0, 30, 10]], dtype=torch.bfloat16))
    mirror = np.array([[[-1.0, 0.0, 64], [0.0, 1.0, 0.0]]])
    move_geometry([s], [0], mirror, 48, 64)
    assert s.gt_instances.bboxes.tolist() == [[54., 0, 64, 10]]
    assert s.ignored_instances.bboxes.float().tolist() == [[34., 0, 44, 10]]
    assert np.allclose(s.gt_instances.keypoints, [[[56., 8], [62., 2]]])
    assert s.gt_instances.keypoints_visible.tolist() == [[0.0, 1.0]]


@pytest.mark.parametrize('augment', [
    dict(type='BatchAffine', scale=(0.7, 1.3), translate_percent=(-0.2, 0.2), rotate=(-30, 30), p=1.0),
    dict(type='BatchRandomResizedCrop', crop_ratio_range=(0.4, 1.0)),
    dict(type='BatchHorizontalFlip', p=1.0)])
def test_label_maps_move_with_the_image_by_nearest_neighbour(augment):
    from mmengine.structures import BaseDataElement

    from sscma.registry import MODELS
    torch.manual_seed(0)
    np.random.seed(0)
    h, w = 48, 64  # not square
    labels = torch.zeros(3, h, w, dtype=torch.long)
    labels[:, 10:30, 8:40] = 1
    labels[:, 30:44, 40:60] = 2
    labels[0, 0:4, :] = 255
    # the image is the label map drawn in grey levels: after the warp, the image says which class each pixel shows
    images = (labels.clamp(max=3).float() * 60)[:, None].repeat(1, 3, 1, 1)
    samples = [BaseDataElement(gt_sem_seg=labels[i].clone()) for i in range(3)]
    out, _ = MODELS.build(augment)(images, samples)
    for img, sample in zip(out, samples):
        moved = sample.gt_sem_seg
        assert moved.dtype == torch.long and set(moved.unique().tolist()) <= {0, 1, 2, 255}
        grey = (img[0] / 60).round().long()
        inside = (moved != 255) & (grey == (img[0] / 60)).reshape(grey.shape)  # pixels not blended at an edge
        agree = (grey[inside] == moved[inside]).float().mean()
        assert agree > 0.98, (augment['type'], float(agree))
