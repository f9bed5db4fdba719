"""Copy-paste on a batch: pasted pixels are exactly the partner's box pixels, pasted objects keep every field,
touching objects go together, and objects already in the image are not hidden (non-square images)."""
import numpy as np
import pytest
import torch
from mmengine.structures import BaseDataElement

from sscma.engine.hooks import BatchAugmentSwitchHook
from sscma.models.data_preprocessors import BatchCopyPaste
from sscma.models.data_preprocessors.copy_paste import pixel_rects, touching_clusters
from sscma.registry import MODELS
from sscma.utils.errors import ConfigError
from tests.test_models.test_mix_augments import H, W, coded_images, sample


def partner():
    """Sample 1: an isolated object (fractional box), two touching objects, another isolated one."""
    return sample([[2.5, 3.2, 10.2, 9.0], [30, 20, 40, 30], [38, 28, 46, 36], [60, 2, 70, 12]], [0, 1, 2, 3],
                  [[[6, 6]], [[35, 25]], [[42, 32]], [[65, 7]]])


def region(rects):
    mask = torch.zeros(H, W, dtype=torch.bool)
    for x0, y0, x1, y1 in rects:
        mask[y0:y1, x0:x1] = True
    return mask


def test_clusters_and_whole_pixel_rects():
    rects = pixel_rects(np.array([[2.5, 3.2, 10.2, 9.0], [30, 20, 40, 30], [38, 28, 46, 36], [75, 40, 90, 60]]), H, W)
    assert rects.tolist() == [[2, 3, 11, 9], [30, 20, 40, 30], [38, 28, 46, 36], [75, 40, 80, 48]]  # clipped
    assert sorted(touching_clusters(rects)) == [[0], [1, 2], [3]]
    assert touching_clusters(np.array([[0, 0, 5, 5], [5, 0, 9, 5]])) == [[0], [1]]  # edges meet: no shared pixel


def test_pasted_pixels_and_objects_are_exact():
    images = coded_images(2)
    samples = [sample([[50, 30, 60, 44]], [5], [[[55, 37]]]), partner()]
    kept = samples[1].clone()
    out = images.clone()
    BatchCopyPaste(p=1, object_p=0.5).paste(out, samples, 0, 1, np.array([0.1, 0.9, 0.2]))  # clusters 0 and 2
    mask = region([[2, 3, 11, 9], [60, 2, 70, 12]])
    assert torch.equal(out[0], torch.where(mask, images[1], images[0]))
    assert torch.equal(out[1], images[1])  # the partner is untouched
    got = samples[0].gt_instances
    assert got.labels.tolist() == [5, 0, 3]
    expected = torch.cat([torch.tensor([[50., 30, 60, 44]]), kept.gt_instances.bboxes[[0, 3]]])
    assert torch.equal(got.bboxes, expected)  # bit for bit: nothing resampled
    np.testing.assert_array_equal(got.keypoints.numpy().reshape(-1, 2), [[55, 37], [6, 6], [65, 7]])
    assert torch.equal(samples[1].gt_instances.bboxes, kept.gt_instances.bboxes)


def test_touching_objects_go_together_and_occlusion_is_refused():
    images = coded_images(2)
    # the image's own object sits under the touching pair's union (hidden 100%): that cluster is not pasted
    samples = [sample([[32, 22, 38, 28]], [5], [[[35, 25]]]), partner()]
    out = images.clone()
    BatchCopyPaste(p=1, object_p=1.0).paste(out, samples, 0, 1, np.zeros(3))
    assert samples[0].gt_instances.labels.tolist() == [5, 0, 3]
    assert torch.equal(out[0], torch.where(region([[2, 3, 11, 9], [60, 2, 70, 12]]), images[1], images[0]))
    # with room, both touching objects come (never one of them with the other's pixels unlabelled)
    samples = [sample([[0, 40, 8, 48]], [5], [[[4, 44]]]), partner()]
    out = images.clone()
    BatchCopyPaste(p=1, object_p=0.5).paste(out, samples, 0, 1, np.array([0.9, 0.0, 0.9]))
    assert samples[0].gt_instances.labels.tolist() == [5, 1, 2]
    assert torch.equal(out[0], torch.where(region([[30, 20, 40, 30], [38, 28, 46, 36]]), images[1], images[0]))
    # a cover up to max_occlusion of the object's area is allowed, more is not
    for own, pasted in (([[2, 3, 11, 13]], True), ([[2, 3, 11, 11]], False)):  # 6/10 rows vs 6/8 rows hidden
        samples = [sample(own, [5]), sample([[2, 3, 11, 9]], [0])]
        BatchCopyPaste(p=1, max_occlusion=0.6).paste(images.clone(), samples, 0, 1, np.zeros(1))
        assert (len(samples[0].gt_instances) == 2) == pasted


def test_label_maps_go_with_the_pixels_and_empty_images_receive():
    images = coded_images(2)
    samples = [BaseDataElement(gt_instances=s.gt_instances, gt_sem_seg=torch.full((H, W), k, dtype=torch.long))
               for k, s in enumerate([sample([], [], np.zeros((0, 1, 2))), partner()])]  # boxes and a label map
    out = images.clone()
    BatchCopyPaste(p=1).paste(out, samples, 0, 1, np.zeros(3))
    mask = region(pixel_rects(partner().gt_instances.bboxes.double().numpy(), H, W))
    assert torch.equal(samples[0].gt_sem_seg, mask.long()) and len(samples[0].gt_instances) == 4
    empty = [sample([[1, 1, 5, 5]], [0]), sample([], [])]  # nothing to paste from an empty partner
    out = images.clone()
    BatchCopyPaste(p=1).paste(out, empty, 0, 1, np.zeros(0))
    assert torch.equal(out, images) and len(empty[0].gt_instances) == 1


def test_on_a_batch_off_and_switched():
    torch.manual_seed(0)
    samples = [partner() for _ in range(4)]
    for s, shift in zip(samples, (0, 3, 6, 9)):  # different places, so pastes are visible
        s.gt_instances.bboxes[:, 1::2] += shift
    images = coded_images(4)
    out, outs = BatchCopyPaste(p=1, object_p=1.0)(images.clone(), samples)
    assert any(len(s.gt_instances) > 4 for s in outs) and not torch.equal(out, images)
    originals = [partner() for _ in range(4)]
    for o, shift in zip(originals, (0, 3, 6, 9)):
        o.gt_instances.bboxes[:, 1::2] += shift
    for i, s in enumerate(outs):  # its own objects first, then whole copies of a partner's, on the partner's pixels
        assert torch.equal(s.gt_instances.bboxes[:4], originals[i].gt_instances.bboxes)
        for box in s.gt_instances.bboxes[4:]:
            x0, y0, x1, y1 = pixel_rects(box[None].double().numpy(), H, W)[0]
            source = int(out[i, 0, y0, x0]) // 10
            assert source != i and (out[i, 0, y0:y1, x0:x1] == 10 * source).all()
            assert any(torch.equal(box, b) for b in originals[source].gt_instances.bboxes)
    same = [partner() for _ in range(4)]
    out, _ = BatchCopyPaste(p=0)(images.clone(), same)
    assert torch.equal(out, images) and all(len(s.gt_instances) == 4 for s in same)
    assert isinstance(MODELS.build(dict(type='BatchCopyPaste', p=0.3)), BatchCopyPaste)
    assert 'BatchCopyPaste' in BatchAugmentSwitchHook().names
    for bad in (dict(p=2), dict(object_p=-0.1), dict(max_occlusion=1.5)):
        with pytest.raises(ConfigError, match='BatchCopyPaste'):
            BatchCopyPaste(**bad)


def test_detector_configs_switch_copy_paste_and_mixup_by_one_variable():
    from sscma.utils import load_config
    for name in ('fomo_mobnetv2', 'rtmdet_nano_small_data'):
        steps = load_config(name, dict(copy_paste=0.5, mixup=0.25)).model.data_preprocessor.augments
        assert dict(type='BatchCopyPaste', p=0.5) in steps and dict(type='BatchMixUp', p=0.25) in steps
        assert all(s['p'] == 0.0 for s in load_config(name).model.data_preprocessor.augments
                   if s['type'] in ('BatchCopyPaste', 'BatchMixUp'))  # off unless asked
    for bad in (dict(copy_paste=1.5), dict(mixup='yes')):
        with pytest.raises(ConfigError, match=f'{next(iter(bad))}='):
            load_config('fomo_mobnetv2', bad)
