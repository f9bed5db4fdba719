import glob

import pytest

from sscma.utils import ConfigError, load_config, top_level_variables
from sscma.utils import config as config_module

CLS = 'configs/classification/mobilenetv2_0.35_digits.py'
FOMO = 'configs/fomo/fomo_mobnetv2.py'


def test_max_epochs_and_base_lr_propagate():
    """The card's words: max_epochs and base_lr drive train_cfg, the optimizer and every scheduler bound
    (what ``tools/train.py FOMO --cfg-options max_epochs=3 base_lr=0.01`` hands to the Runner)."""
    from sscma.apis import prepare_train_config
    cfg = prepare_train_config(FOMO, cfg_options={'max_epochs': 3, 'base_lr': 0.01})
    assert cfg.max_epochs == cfg.train_cfg.max_epochs == 3
    assert cfg.base_lr == cfg.optim_wrapper.optimizer.lr == 0.01
    warmup, cosine = cfg.param_scheduler
    assert warmup.begin == 0 and warmup.end == cosine.begin == 1  # min(3, max(3 // 10, 1))
    assert cosine.end == 3 and cosine.T_max == 2
    assert cosine.eta_min == pytest.approx(0.01 * 0.01)


def test_every_config_has_the_card_variables():
    for path in sorted(glob.glob('configs/**/*.py', recursive=True)):
        if '_base_/' in path:
            continue
        cfg = load_config(path)
        assert cfg.train_cfg.max_epochs == cfg.max_epochs, path
        assert cfg.optim_wrapper.optimizer.lr == cfg.base_lr, path
        assert cfg.param_scheduler[-1].end == max(cfg.max_epochs, cfg.param_scheduler[-1].begin + 1), path
        assert 'epochs' not in cfg and 'lr' not in cfg, path


def test_epochs_and_lr_are_aliases(monkeypatch):
    monkeypatch.setattr(config_module, '_aliases_reported', set())
    logged = []  # what the user sees, whatever stream the mmengine logger was created with
    monkeypatch.setattr(config_module, 'print_log', lambda msg, *args, **kwargs: logged.append(str(msg)))
    cfg = load_config(CLS, {'epochs': 2, 'lr': 0.01})
    load_config(CLS, {'epochs': 3})
    said = [line for line in logged if 'accepted as an alias' in line]
    assert len(said) == 2, said  # once per alias, not once per load
    assert 'epochs=2 sets max_epochs' in said[0] and 'lr=0.01 sets base_lr' in said[1]
    assert cfg.max_epochs == 2 and cfg.base_lr == 0.01 and 'epochs' not in cfg
    with pytest.raises(ConfigError, match='epochs is another name for max_epochs'):
        load_config(CLS, {'epochs': 2, 'max_epochs': 3})


def test_own_epochs_variable_is_not_renamed(tmp_path):
    cfg_file = tmp_path / 'own.py'
    cfg_file.write_text("epochs = 5\nmax_epochs = 1\ntrain_cfg = dict(max_epochs=epochs)\n")
    cfg = load_config(str(cfg_file), {'epochs': 7})
    assert cfg.train_cfg.max_epochs == 7 and cfg.max_epochs == 1


def test_epochs_and_lr_propagate():
    cfg = load_config(CLS, {'epochs': 2, 'lr': 0.01})
    assert cfg.train_cfg.max_epochs == 2
    assert cfg.optim_wrapper.optimizer.lr == 0.01
    warmup, cosine = cfg.param_scheduler
    assert warmup.end == cosine.begin == 1
    assert cosine.end == 2 and cosine.T_max == 1
    assert cosine.eta_min == pytest.approx(0.01 * 0.01)


def test_defaults_without_overrides():
    cfg = load_config(CLS)
    assert cfg.train_cfg.max_epochs == cfg.max_epochs == 30
    assert cfg.optim_wrapper.optimizer.lr == 0.004
    assert cfg.param_scheduler[1].end == 30


def test_child_variable_reaches_base_fields():
    cfg = load_config('configs/classification/mobilenetv2_1.0_digits.py')
    assert cfg.model.backbone.widen_factor == 1.0
    assert cfg.optim_wrapper.optimizer.lr == 0.002  # set in the child, used by the schedule base
    assert cfg.param_scheduler[1].eta_min == pytest.approx(0.002 * 0.01)


def test_num_classes_imgsz_data_root_propagate():
    cfg = load_config(FOMO, {'num_classes': 5, 'imgsz': (160, 128), 'data_root': '/data/x', 'batch': 4})
    assert cfg.model.head.num_classes == 5
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        ds = cfg[loader].dataset
        assert ds.num_classes == 5 and ds.data_root == '/data/x'
        steps = [s for t in ds.pipeline for s in (t.transforms if t.type == 'CachedTransforms' else [t])]
        resize = [t for t in steps if t.type == 'mmdet.Resize'][0]
        assert tuple(resize.scale) == (160, 128)
        assert cfg[loader].batch_size == 4


def test_classifier_imgsz_reaches_the_cached_resize_and_augments_the_preprocessor():
    cfg = load_config(CLS, {'imgsz': (48, 40), 'num_classes': 4})
    for loader in ('train_dataloader', 'val_dataloader'):
        pipeline = cfg[loader].dataset.pipeline
        steps = [s for t in pipeline for s in (t.transforms if t.type == 'CachedTransforms' else [t])]
        assert tuple([t for t in steps if t.type == 'mmpretrain.Resize'][0].scale) == (48, 40)
    assert [t.type for t in cfg.train_dataloader.dataset.pipeline] == ['CachedTransforms']
    pre = cfg.model.data_preprocessor
    assert pre.type == 'ClsDataPreprocessor' and pre.num_classes == 4
    assert [a.type for a in pre.augments] == ['BatchRandomResizedCrop', 'BatchAffine', 'BatchBrightnessContrast']


def test_dotted_options_merge_as_in_mmengine():
    cfg = load_config(FOMO, {'train_dataloader.num_workers': 0, 'model.head.score_thr': 0.3})
    assert cfg.train_dataloader.num_workers == 0
    assert cfg.model.head.score_thr == 0.3


def test_top_level_variables_lists_literals():
    variables = top_level_variables(FOMO)
    assert variables['max_epochs'] == 60 and variables['base_lr'] == 0.003 and variables['num_classes'] == 2
    assert 'model' not in variables


def test_missing_config_names_file(tmp_path):
    with pytest.raises(ConfigError, match='nope.py'):
        load_config(str(tmp_path / 'nope.py'))


def test_missing_base_names_both_files(tmp_path):
    cfg = tmp_path / 'child.py'
    cfg.write_text("_base_ = ['./missing_base.py']\nepochs = 3\n")
    with pytest.raises(ConfigError, match=r'missing_base\.py.*child\.py'):
        load_config(str(cfg), {'epochs': 1})


def test_syntax_error_names_line(tmp_path):
    cfg = tmp_path / 'bad.py'
    cfg.write_text('epochs = (\n')
    with pytest.raises(ConfigError, match='bad.py'):
        load_config(str(cfg))


def test_small_data_schedule_follows_max_epochs():
    cfg = load_config('configs/fomo/fomo_mobnetv2_small_data.py', {'max_epochs': 90})
    assert cfg.train_cfg.max_epochs == 90 and cfg.train_cfg.val_interval == 5
    assert cfg.train_cfg.dynamic_intervals == [(60, 1)]  # every epoch over the last third
    assert cfg.optim_wrapper.optimizer.lr == 0.015 and cfg.default_hooks.checkpoint.interval == 5


def test_lowmem_config_sets_stage_1_expansion():
    cfg = load_config('configs/fomo/fomo_mobnetv2_lowmem.py')
    assert cfg.model.backbone.expand_ratios == (1, 4) and cfg.model.backbone.widen_factor == 0.35


def test_absolute_base_path_still_takes_overrides(tmp_path):
    """A user's config outside the repo naming its base by absolute path: overrides reach the base's fields."""
    import os.path as osp
    user = tmp_path / 'my_fomo.py'
    user.write_text(f"_base_ = ['{osp.abspath(FOMO)}']\nmax_epochs = 7\n")
    cfg = load_config(str(user), {'data_root': '/data/x', 'num_classes': 3})
    assert cfg.train_dataloader.dataset.data_root == '/data/x'
    assert cfg.model.head.num_classes == 3 and cfg.train_cfg.max_epochs == 7


def test_an_override_the_config_code_cannot_use_names_the_config():
    with pytest.raises(ConfigError, match=r'rtmdet_mnv2_small_data.*IndexError.*overrides stages=\(1, 2, 9\)'):
        load_config('rtmdet/rtmdet_mnv2_small_data', dict(stages=(1, 2, 9)))
