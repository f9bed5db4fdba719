"""Defaults that follow the data: the input size grows for small objects, within the images and max_side."""
import pytest

from sscma.apis.data_defaults import choose_epochs, choose_imgsz, choose_stages
from sscma.apis.runner import prepare_train_config
from sscma.utils import ConfigError
from tests.conftest import write_roboflow_coco


def records(size, side, n=8):
    w, h = size
    return [dict(width=w, height=h, instances=[dict(bbox=[10, 10, 10 + side, 10 + side])] * 2) for _ in range(n)]


@pytest.mark.parametrize('size, side, expected', [
    ((160, 120), 5, (160, 120)),    # tiny sources: grown to the files' size, their ratio
    ((640, 480), 5, (160, 120)),    # ... but not past max_side (ratio kept)
    ((150, 100), 3, (152, 104)),    # rounded up to the multiple
    ((200, 150), 14, (120, 120)),   # 6.7 px at 96: grown just enough (8 px at 120)
    ((128, 128), 40, None),         # large objects: the config's size
    ((64, 48), 3, None),            # files smaller than the input: nothing to gain
])
def test_choose_imgsz(size, side, expected):
    chosen, why = choose_imgsz((96, 96), records(size, side), min_object_px=8, max_side=160, multiple=8)
    assert chosen == ({'imgsz': expected} if expected else {})
    assert ('kept' in why) == (expected is None) and '25th-percentile' in why


def test_no_objects_keeps_the_size():
    assert choose_imgsz((96, 96), [dict(width=50, height=50, instances=[])])[0] == {}


def test_training_picks_it_prints_it_and_the_checkpoint_carries_it(tmp_path, caplog):
    root = write_roboflow_coco(tmp_path / 'export', n_images=(8, 4, 4), size=(200, 150))  # 14 px objects
    options = dict(data_root=root, num_classes=2)
    cfg = prepare_train_config('fomo_mobnetv2', str(tmp_path / 'w'), options)
    assert tuple(cfg.imgsz) == (120, 120)
    resize = [t for t in cfg.train_dataloader.dataset.pipeline[0]['transforms'] if t['type'].endswith('Resize')]
    assert tuple(resize[0]['scale']) == (120, 120)
    assert cfg.default_hooks.config_source.options['imgsz'] == (120, 120)
    assert options == dict(data_root=root, num_classes=2)  # the caller's dict is not changed
    # what the user gives is left alone
    given = prepare_train_config('fomo_mobnetv2', str(tmp_path / 'w'), dict(options, imgsz=(96, 96)))
    assert tuple(given.imgsz) == (96, 96)
    off = prepare_train_config('fomo_mobnetv2', str(tmp_path / 'w'), dict(options, auto_imgsz=None))
    assert tuple(off.imgsz) == (96, 96)


def test_a_bad_rule_is_refused_by_name(tmp_path):
    with pytest.raises(ConfigError, match='auto_imgsz'):
        prepare_train_config('fomo_mobnetv2', str(tmp_path / 'w'), dict(auto_imgsz=dict(min_px=8)))


def test_tune_starts_from_the_size_the_rule_chose(tmp_path):
    """`sscma tune`'s trial 0 is the default command on this data: its size is the one auto_imgsz picks."""
    import optuna

    from sscma.apis.tune import Tuner
    root = write_roboflow_coco(tmp_path / 'export', n_images=(8, 4, 4), size=(200, 150))  # 14 px objects
    tuner = Tuner('fomo_mobnetv2', dict(data_root=root, num_classes=2), str(tmp_path / 't'), log=lambda *a: None)
    assert tuner.defaults['imgsz'] == (120, 120)
    params = dict(base_lr=0.003, max_epochs=60, widen_factor=0.35, mosaic=0.0, stages='2')
    assert tuner.propose(optuna.trial.FixedTrial(dict(params, imgsz_scale=1.0)))['imgsz'] == (120, 120)
    assert tuner.propose(optuna.trial.FixedTrial(dict(params, imgsz_scale=1.5)))['imgsz'] == (192, 192)
    # the small-data config's schedule rule: 8 images are one step an epoch, so trial 0 trains the rule's 300
    tuner = Tuner('fomo_mobnetv2_small_data', dict(data_root=root, num_classes=2), str(tmp_path / 's'),
                  log=lambda *a: None)
    assert tuner.defaults['max_epochs'] == 300


@pytest.mark.parametrize('imgsz, size, side, expected', [
    ((96, 96), (200, 150), 14, (1, 2, 4)),   # 7.8 px at 96x96 (non-square files): the finer levels
    ((96, 64), (96, 64), 63, (1, 2, 4)),     # non-square input, objects just under 64 px
    ((96, 64), (96, 64), 64, None),          # at 64 px: the config's stages
    ((160, 120), (640, 480), 360, None),     # large objects (90 px at the input)
])
def test_choose_stages(imgsz, size, side, expected):
    small = dict(stages=(1, 2, 4), neck_channels=32)
    chosen, why = choose_stages(imgsz, records(size, side), (2, 4, 6), max_object_px=64, small=small)
    assert chosen == (small if expected else {})
    assert ('kept' in why) == (expected is None) and 'median side' in why
    assert choose_stages(imgsz, records(size, side), (1, 2, 4))[0] == {}  # already at the small stages
    assert choose_stages(imgsz, records(size, side), (2, 4, 6))[0] == ({'stages': expected} if expected else {})


@pytest.mark.parametrize('imgsz, size, side, expected', [
    ((96, 96), (40, 40), 14, (3, )),         # 33.6 px at 96x96 (files smaller than the input): the coarser cut
    ((96, 64), (96, 64), 24, (3, )),         # non-square input, objects at 24 px
    ((96, 64), (96, 64), 23, None),          # just under: FOMO's cut at stride 8
    ((96, 96), (200, 150), 14, None),        # 6.7x9 px (non-square files)
])
def test_choose_stages_for_large_objects(imgsz, size, side, expected):
    large = dict(stages=(3, ))
    chosen, why = choose_stages(imgsz, records(size, side), (2, ), min_object_px=24, large=large, multiple=16)
    assert chosen == (large if expected else {})
    assert ('kept' in why) == (expected is None) and '25th-percentile side' in why
    assert choose_stages(imgsz, records(size, side), (3, ), min_object_px=24, large=large)[0] == {}  # already
    chosen, why = choose_stages(imgsz, records(size, side), (2, ), min_object_px=24, large=large, multiple=64)
    assert chosen == {} and ('no multiple of 64' in why) == bool(expected)  # 96 is no multiple of 64
    mixed = records(size, side, n=7) + records(size, 4, n=1)  # an eighth of the objects small: not the rule's
    assert choose_stages(imgsz, mixed, (2, ), min_object_px=24, large=large)[0] == (large if expected else {})
    mixed = records(size, side, n=2) + records(size, 4, n=2)  # half of them: the 25th percentile is small
    assert choose_stages(imgsz, mixed, (2, ), min_object_px=24, large=large)[0] == {}
    for bad in (dict(min_object_px=24), dict(min_object_px=24, large=large, max_object_px=64),
                dict(min_object_px=24, large=dict(neck_channels=32))):
        with pytest.raises(ConfigError, match='large=dict'):
            choose_stages(imgsz, records(size, side), (2, ), **bad)


def test_fomo_takes_the_coarser_cut_for_large_objects(tmp_path):
    """fomo_mobnetv2_small_data: 14 px objects in 40x40 files are 33.6 px at 96x96, so the head reads stage 3
    (16 px cells); the checkpoint carries the choice; 14 px objects in 200x150 files, stages given,
    auto_stages=None and the default config (no rule) keep stride 8."""
    from sscma.registry import MODELS
    big = write_roboflow_coco(tmp_path / 'big', n_images=(8, 4, 4), size=(40, 40))
    options = dict(data_root=big, num_classes=2)
    cfg = prepare_train_config('fomo_mobnetv2_small_data', str(tmp_path / 'w'), options)
    assert tuple(cfg.stages) == (3, ) and tuple(cfg.model.backbone.out_indices) == (3, )
    assert tuple(cfg.default_hooks.config_source.options['stages']) == (3, )
    assert MODELS.build(cfg.model).head.stride == 16
    for kept in (dict(stages=(2, )), dict(auto_stages=None)):
        cfg = prepare_train_config('fomo_mobnetv2_small_data', str(tmp_path / 'w'), dict(options, **kept))
        assert tuple(cfg.model.backbone.out_indices) == (2, )
    assert tuple(prepare_train_config('fomo_mobnetv2', str(tmp_path / 'w'), options).model.backbone.out_indices) \
        == (2, )
    small = write_roboflow_coco(tmp_path / 'small', n_images=(8, 4, 4), size=(200, 150))
    cfg = prepare_train_config('fomo_mobnetv2_small_data', str(tmp_path / 'w'), dict(data_root=small, num_classes=2))
    assert tuple(cfg.model.backbone.out_indices) == (2, )


def test_the_detector_takes_finer_levels_for_small_objects(tmp_path):
    """rtmdet_mnv2_small_data: 14 px objects in 200x150 files are 6.7x9 px at 96x96, so the neck reads stages
    (1, 2, 4) (strides 4/8/16) at 32 channels; the checkpoint carries the choice; what the user gives and
    auto_stages=None are kept."""
    from sscma.apis.tune import Tuner
    root = write_roboflow_coco(tmp_path / 'export', n_images=(8, 4, 4), size=(200, 150))
    options = dict(data_root=root, num_classes=2)
    cfg = prepare_train_config('rtmdet_mnv2_small_data', str(tmp_path / 'w'), options)
    assert tuple(cfg.stages) == (1, 2, 4) and tuple(cfg.model.backbone.out_indices) == (1, 2, 4)
    assert list(cfg.model.bbox_head.anchor_generator.strides) == [4, 8, 16]
    assert cfg.model.neck.out_channels == 32 == cfg.model.bbox_head.feat_channels
    assert tuple(cfg.default_hooks.config_source.options['stages']) == (1, 2, 4)
    assert cfg.default_hooks.config_source.options['neck_channels'] == 32
    for kept in (dict(stages=(2, 4, 6)), dict(auto_stages=None)):
        cfg = prepare_train_config('rtmdet_mnv2_small_data', str(tmp_path / 'w'), dict(options, **kept))
        assert tuple(cfg.model.backbone.out_indices) == (2, 4, 6) and cfg.model.neck.out_channels == 64
    cfg = prepare_train_config('rtmdet_mnv2_small_data', str(tmp_path / 'w'), dict(options, neck_channels=48))
    assert tuple(cfg.model.backbone.out_indices) == (1, 2, 4) and cfg.model.neck.out_channels == 48
    big = write_roboflow_coco(tmp_path / 'big', n_images=(8, 4, 4), size=(64, 48))  # 14 px: 70x93 at 320x320
    cfg = prepare_train_config('rtmdet_mnv2_small_data', str(tmp_path / 'w'),
                               dict(data_root=big, num_classes=2, imgsz=(320, 320)))
    assert tuple(cfg.model.backbone.out_indices) == (2, 4, 6)
    # sscma tune's trial 0 is the default command on this data: the stages the rule picked
    tuner = Tuner('rtmdet_mnv2_small_data', options, str(tmp_path / 't'), log=lambda *a: None)
    assert tuner.defaults['stages'] == (1, 2, 4)
    assert tuner._default_params()['stages'] == '1,2,4'
    first = tuner.propose(tuner.study.ask())  # trial 0: the default command on this data
    assert first['stages'] == (1, 2, 4) and first['neck_channels'] == 32


def test_a_stages_rule_needs_stages(tmp_path):
    root = write_roboflow_coco(tmp_path / 'export', n_images=(8, 4, 4), size=(200, 150))
    with pytest.raises(ConfigError, match='auto_stages'):
        prepare_train_config('rtmdet_mnv2_small_data', str(tmp_path / 'w'),
                             dict(data_root=root, num_classes=2, auto_stages=dict(max_px=16)))


def test_a_resumed_run_goes_on_with_the_choices_stored_in_its_checkpoint(tmp_path):
    """The rules are not run again on --resume: the checkpoint's stored options give the architecture and size
    (the rule on other data, or on data that changed, could pick another and load the weights only in part)."""
    import torch
    big = write_roboflow_coco(tmp_path / 'big', n_images=(8, 4, 4), size=(64, 48))  # kept at (2, 4, 6) from scratch
    options = dict(data_root=big, num_classes=2, imgsz=(320, 320))
    work = tmp_path / 'w'
    work.mkdir()
    ckpt = str(work / 'epoch_3.pth')
    source = dict(entry='rtmdet_mnv2_small_data.py', files={'rtmdet_mnv2_small_data.py': '# placeholder\n'},
                  options=dict(options, stages=(1, 2, 4), neck_channels=32))
    torch.save(dict(state_dict={}, meta=dict(config_source=source)), ckpt)
    (work / 'last_checkpoint').write_text(ckpt)
    for resume in ('auto', ckpt):
        cfg = prepare_train_config('rtmdet_mnv2_small_data', str(work), options, resume=resume)
        assert tuple(cfg.model.backbone.out_indices) == (1, 2, 4) and cfg.model.neck.out_channels == 32
        assert cfg.resume and cfg.default_hooks.config_source.options['neck_channels'] == 32
    # what is given now still wins
    cfg = prepare_train_config('rtmdet_mnv2_small_data', str(work), dict(options, neck_channels=48), resume='auto')
    assert cfg.model.neck.out_channels == 48 and tuple(cfg.model.backbone.out_indices) == (1, 2, 4)
    with pytest.raises(ConfigError, match='nothing to resume'):
        prepare_train_config('rtmdet_mnv2_small_data', str(tmp_path / 'empty'), options, resume='auto')


@pytest.mark.parametrize('epochs, images, expected', [
    (60, 120, 125),   # 8 steps an epoch at batch 16: 480 steps -> 125 epochs reach 1000
    (60, 60, 250),    # 4 steps an epoch
    (60, 10, 300),    # 1 step an epoch: capped at the rule's max_epochs
    (60, 400, None),  # 25 steps an epoch: 1500 steps already
    (400, 10, None),  # the config's schedule is longer than the cap: kept
])
def test_choose_epochs(epochs, images, expected):
    chosen, why = choose_epochs(epochs, 16, images, min_iters=1000, most=300)
    assert chosen == ({'max_epochs': expected} if expected else {})
    assert ('kept' in why) == (expected is None) and 'steps' in why


def test_a_small_split_trains_longer_unless_the_user_gives_the_schedule(tmp_path):
    root = write_roboflow_coco(tmp_path / 'export', n_images=(20, 4, 4), size=(96, 64))  # 2 steps an epoch
    cfg = prepare_train_config('fomo_mobnetv2_small_data', str(tmp_path / 'w'), dict(data_root=root, num_classes=2))
    assert cfg.max_epochs == cfg.train_cfg.max_epochs == 300
    assert cfg.default_hooks.config_source.options['max_epochs'] == 300
    assert cfg.train_cfg.dynamic_intervals == [(200, 1)]  # the config's epoch-based parts follow
    repeated = dict(type='RepeatDataset', times=5, dataset=dict(cfg.train_dataloader.dataset))
    cfg = prepare_train_config('fomo_mobnetv2_small_data', str(tmp_path / 'r'),
                               {'data_root': root, 'num_classes': 2, 'train_dataloader.dataset': repeated})
    assert cfg.train_cfg.max_epochs == 143  # 100 samples an epoch: 7 steps
    for given in (dict(max_epochs=7), dict(epochs=7)):
        cfg = prepare_train_config('fomo_mobnetv2_small_data', str(tmp_path / 'g'),
                                   dict(data_root=root, num_classes=2, **given))
        assert cfg.train_cfg.max_epochs == 7
    for bad in (dict(min_steps=10), dict(min_iters='1000')):
        with pytest.raises(ConfigError, match='auto_epochs'):
            prepare_train_config('fomo_mobnetv2_small_data', str(tmp_path / 'b'),
                                 dict(data_root=root, num_classes=2, auto_epochs=bad))
