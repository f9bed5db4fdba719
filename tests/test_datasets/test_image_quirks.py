"""Image files as users have them (phone JPEGs with EXIF orientation, grayscale JPEGs, RGBA / palette /
16-bit PNGs, BMP, a folder mixing sizes) load into the model's colour format and score right."""
import numpy as np
import pytest

from sscma.registry import DATASETS
from sscma.utils import load_config
from tests.scenes import IMAGE_KINDS, draw_scene, make_scenes, write_coco_scenes
from tests.test_evaluation.test_geometry import FOMO_CFG, _evaluate, _fomo_predict, fomo_model  # noqa: F401

SCENES = make_scenes(8, seed=5)


@pytest.mark.parametrize('kind', ['exif_rotated_jpg', 'rgba_png', 'palette_png', 'png16', 'bmp'])
def test_file_kinds_score_like_plain_files(tmp_path, fomo_model, kind):  # noqa: F811
    """Annotations are on the upright picture (what Roboflow, CVAT in a browser and Ultralytics show): an
    EXIF-rotated phone JPEG is turned upright on loading, so its boxes land on the objects."""
    write_coco_scenes(str(tmp_path), {'valid': SCENES}, (160, 120), kind=kind)
    cfg = load_config(FOMO_CFG, dict(data_root=str(tmp_path)))
    dataset = DATASETS.build(cfg.val_dataloader.dataset)
    sample = dataset[0]
    assert sample['inputs'].shape == (3, 96, 96) and sample['data_samples'].ori_shape == (120, 160)
    res = _evaluate(cfg.val_evaluator, dataset, _fomo_predict(fomo_model))
    assert res['fomo/f1'] == 1.0, res


def test_mixed_sizes_in_one_split(tmp_path, fomo_model):  # noqa: F811
    sizes = [(128, 128), (160, 120), (64, 48), (320, 240), (120, 160)]
    write_coco_scenes(str(tmp_path), {'valid': SCENES}, sizes, kind=['jpg', 'png'])
    cfg = load_config(FOMO_CFG, dict(data_root=str(tmp_path)))
    dataset = DATASETS.build(cfg.val_dataloader.dataset)
    assert {dataset[i]['data_samples'].ori_shape for i in range(5)} == {(h, w) for w, h in sizes}
    assert _evaluate(cfg.val_evaluator, dataset, _fomo_predict(fomo_model))['fomo/f1'] == 1.0


@pytest.mark.parametrize('model_colour', ['color', 'grayscale'])
def test_grayscale_and_colour_files_into_either_model(tmp_path, model_colour):
    """A grayscale JPEG feeds an RGB model three equal channels; a colour file feeds a grayscale model one."""
    write_coco_scenes(str(tmp_path), {'valid': SCENES[:4]}, (160, 120), kind=['gray_jpg', 'jpg'])
    cfg = load_config(FOMO_CFG, dict(data_root=str(tmp_path), color_type=model_colour))
    dataset = DATASETS.build(cfg.val_dataloader.dataset)
    gray_file, colour_file = dataset[0]['inputs'].numpy(), dataset[1]['inputs'].numpy()
    if model_colour == 'color':
        assert gray_file.shape == colour_file.shape == (3, 96, 96)
        assert (gray_file[0] == gray_file[1]).all() and (gray_file[1] == gray_file[2]).all()
        assert not (colour_file[0] == colour_file[2]).all()
    else:
        assert gray_file.shape == colour_file.shape == (1, 96, 96)


def test_every_kind_shows_the_same_picture(tmp_path):
    """The writers themselves: each kind decodes (as the pipeline does) to the drawn picture."""
    import mmcv
    img = draw_scene(SCENES[0], 160, 120)
    for kind, (suffix, write) in IMAGE_KINDS.items():
        path = str(tmp_path / f'{kind}{suffix}')
        write(path, img)
        got = mmcv.imread(path, 'color')
        assert got.shape == img.shape, kind
        tol = 2 if kind in ('png', 'bmp', 'png16', 'rgba_png') else 40
        assert np.abs(got.astype(int) - img).mean() < tol, kind


def test_annotation_for_another_orientation_is_refused(tmp_path):
    """Annotated on the raw (EXIF-ignored) pixels, as labelImg does, but loaded upright: one clear error."""
    from sscma.utils import DatasetError
    write_coco_scenes(str(tmp_path), {'valid': SCENES[:2]}, (160, 120), kind='exif_rotated_jpg')
    cfg = load_config(FOMO_CFG, dict(data_root=str(tmp_path), color_type='color_ignore_orientation'))
    dataset = DATASETS.build(cfg.val_dataloader.dataset)
    with pytest.raises(DatasetError, match=r'valid_000\.jpg: the image is 120x160 as loaded but its annotation '
                                           r'says 160x120 \(width and height swapped: the file has an EXIF'):
        dataset[0]


def test_wrong_stated_size_stops_training_with_one_line(tmp_path):
    """Raised inside a DataLoader worker, the error still reaches the user as one line, and no run is left."""
    import json
    import os.path as osp

    from tests.test_tools.test_train_test import run_tool
    root = write_coco_scenes(str(tmp_path / 'data'), {s: SCENES[:4] for s in ('train', 'valid', 'test')},
                             (160, 120))
    ann = osp.join(root, 'train', '_annotations.coco.json')
    data = json.load(open(ann))
    data['images'][2]['width'] = 320
    json.dump(data, open(ann, 'w'))
    work = tmp_path / 'work'
    proc = run_tool('train.py', FOMO_CFG, '--work-dir', str(work), '--cfg-options', f'data_root={root}',
                    'workers=1', 'batch=2', 'epochs=1', check=False)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('error: ') and 'train_002.jpg: the image is 160x120 as loaded but its annotation says ' \
        '320x120' in last, proc.stderr[-2000:]
    assert 'Traceback' not in proc.stderr and not work.exists()
