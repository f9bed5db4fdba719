"""tools/transfer_learn.py: Sony-style configuration.json, each bad key reported before training; a tiny run."""
import json
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

from sscma.apis.transfer_learn import TRANSFER_CONFIG, load_transfer_configuration, source_model_settings
from sscma.utils import ConfigError, load_config
from tests.conftest import write_class_folders

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='module')
def sony_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('sony')
    write_class_folders(root, ['cat', 'dog', 'fox'], per_class=3, splits=('training', 'validation'))
    write_class_folders(root / 'other', ['cat', 'dog', 'owl'], per_class=1, splits=('validation', ))
    (root / 'empty').mkdir()
    (root / 'model.h5').write_bytes(b'\x89HDF')
    (root / 'notes.pth').write_text('not a checkpoint')
    return root


def _configuration(root, **changes):
    conf = dict(source_model='', dataset_training_dir='./training', dataset_validation_dir='./validation',
                batch_size=4, input_tensor_size=32, epochs=1, output_dir='./output',
                evaluate_result_dir='./evaluate_result')
    conf.update(changes)
    conf = {k: v for k, v in conf.items() if v is not ...}  # ``...`` removes a key
    path = osp.join(root, 'configuration.json')
    with open(path, 'w') as f:
        json.dump(conf, f)
    return path


def test_valid_configuration(sony_root):
    conf = load_transfer_configuration(_configuration(sony_root, input_tensor_size=[64, 48]))
    assert conf.classes == ['cat', 'dog', 'fox'] and conf.input_hw == (64, 48)
    assert conf.training_dir == osp.join(sony_root, 'training')  # relative to configuration.json's folder
    assert conf.output_dir == osp.join(sony_root, 'output') and conf.source_model == ''


@pytest.mark.parametrize('changes, message', [
    (dict(batch_size=0), 'batch_size must be a positive integer, got 0'),
    (dict(batch_size='32'), "batch_size must be a positive integer, got '32'"),
    (dict(epochs=2.5), 'epochs must be a positive integer, got 2.5'),
    (dict(epochs=True), 'epochs must be a positive integer, got True'),
    (dict(input_tensor_size=-96), r'input_tensor_size must be a positive integer or \[height, width\], got -96'),
    (dict(input_tensor_size=[96]), r'input_tensor_size must be .*got \[96\]'),
    (dict(input_tensor_size=16), 'input_tensor_size=16: at least 32 pixels'),
    (dict(epochs=...), "missing key 'epochs'"),
    (dict(output_dir=...), "missing key 'output_dir'"),
    (dict(evaluate_result_dir=''), 'evaluate_result_dir must be a folder path'),
    (dict(output_dir='./model.h5'), r"output_dir='./model.h5': .* exists and is not a folder"),
    (dict(dataset_training_dir='./nowhere'), r"dataset_training_dir='./nowhere': folder .*nowhere does not exist"),
    (dict(dataset_validation_dir='./empty'), r"dataset_validation_dir='./empty': no class folders in"),
    (dict(dataset_validation_dir='./other/validation'),
     r"training and validation classes differ: only in training \['fox'\], only in validation \['owl'\]"),
    (dict(dataset_training_dir=5), 'dataset_training_dir must be a folder path .*got 5'),
    (dict(batchsize=8), "unknown key 'batchsize'; did you mean 'batch_size'?"),
    (dict(source_model='model.tflite'), r"source_model='model.tflite': a .tflite file cannot be trained from; give a "
     r'keras.applications MobileNetV2'),
    (dict(source_model='', source_keras_model='missing.h5'), r"source_keras_model='missing.h5': no such Keras model"),
    (dict(source_keras_model='saved_model.pb'), r"a .pb file cannot be trained from; .*its SavedModel folder"),
    (dict(source_model='missing.pth'), r"source_model='missing.pth': no such checkpoint file"),
    (dict(source_model='notes.pth'), r"source_model='notes.pth': not a PyTorch checkpoint"),
    (dict(source_model='a.pth', source_keras_model='b.pth'), 'give one of source_model / source_keras_model'),
])
def test_each_bad_key_gives_one_line(sony_root, changes, message):
    path = _configuration(sony_root, **changes)
    with pytest.raises(ConfigError) as info:
        load_transfer_configuration(path)
    lines = str(info.value).splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(path + ': ')
    assert re.search(message, lines[0]), lines[0]


def test_all_problems_reported_together_by_the_tool(sony_root, tmp_path):
    path = _configuration(sony_root, batch_size=0, epochs=..., source_model='missing.keras',
                          output_dir=str(tmp_path / 'out'), evaluate_result_dir=str(tmp_path / 'eval'))
    proc = subprocess.run([sys.executable, 'tools/transfer_learn.py', path], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode != 0 and 'Traceback' not in proc.stderr
    err = proc.stderr.strip().splitlines()
    assert err[0].startswith('error: ') and len(err) == 3, err
    assert any('batch_size' in e for e in err) and any("missing key 'epochs'" in e for e in err)
    assert any('Keras' in e for e in err)
    assert not osp.exists(tmp_path / 'out') and not osp.exists(tmp_path / 'eval')  # nothing was started


def _transfer_learn(path, timeout):
    """Run ``tools/transfer_learn.py path`` (it must succeed); its log and the lines reporting ``load_from``."""
    proc = subprocess.run([sys.executable, 'tools/transfer_learn.py', path, '--cfg-options', 'workers=0'],
                          cwd=REPO, capture_output=True, text=True, timeout=timeout)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    return log, [line for line in log.splitlines() if 'load_from' in line and 'tensors of the model' in line]


def test_end_to_end_from_checkpoint_with_another_head(sony_root, tmp_path):
    """A 5-class checkpoint fine-tuned on 3 classes: head re-initialised in one line, results written."""
    from sscma.registry import MODELS
    cfg = load_config(TRANSFER_CONFIG, dict(num_classes=5))
    src = osp.join(tmp_path, 'five_classes.pth')
    torch.save(dict(state_dict=MODELS.build(cfg.model).state_dict(),
                    meta=dict(cfg='widen_factor = 1.0\nmean = [120.0, 110.0, 100.0]\nstd = [60.0, 60.0, 60.0]\n')),
               src)
    path = _configuration(sony_root, source_model=src, output_dir=str(tmp_path / 'out'),
                          evaluate_result_dir=str(tmp_path / 'eval'))
    log, report = _transfer_learn(path, timeout=300)
    assert len(report) == 1 and 'head.fc.weight [5, 1280]->[3, 1280]' in report[0], report
    assert 'size mismatch' not in log
    results = json.load(open(tmp_path / 'eval' / 'results.json'))
    assert 0.0 <= results['top1'] <= 100.0 and results['top1'] == results['metrics']['accuracy/top1']
    assert {'single-label/precision', 'single-label/recall', 'single-label/f1-score'} <= set(results['metrics'])
    assert results['classes'] == ['cat', 'dog', 'fox'] and results['num_images'] == 9
    assert osp.isfile(results['checkpoint']) and osp.dirname(results['checkpoint']) == str(tmp_path / 'out')
    assert osp.getsize(tmp_path / 'eval' / 'confusion_matrix.png') > 1000
    ckpt = torch.load(results['checkpoint'], map_location='cpu')
    assert ckpt['state_dict']['head.fc.weight'].shape == (3, 1280)
    # the source model's normalisation was kept
    assert source_model_settings(ckpt)['mean'] == [120.0, 110.0, 100.0]
    assert not [f for f in os.listdir(tmp_path / 'eval') if f.endswith('.tmp')]


def test_source_model_that_does_not_fit(sony_root, tmp_path):
    from sscma.apis.transfer_learn import prepare_transfer_config
    src = osp.join(tmp_path, 'other.pth')
    torch.save(dict(state_dict={'backbone.features.0.0.weight': torch.zeros(8, 3, 3, 3)}), src)
    conf = load_transfer_configuration(_configuration(sony_root, source_model=src))
    with pytest.raises(ConfigError, match=r'has no backbone tensor that fits MobileNetV2\(widen_factor=1.0\).*'
                       r'backbone.features.0.0.weight \[8, 3, 3, 3\] vs \[32, 3, 3, 3\]'):
        prepare_transfer_config(conf)


def _save_keras_mobilenet_v2(path, alpha=0.35, include_top=True):
    from sscma.models.utils.keras_mobilenet_v2 import import_tensorflow
    import_tensorflow()  # triton before TensorFlow (see there)
    tf_keras = pytest.importorskip('tf_keras')
    model = tf_keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=alpha, weights=None,
                                              include_top=include_top, classes=4)
    model.save(path)
    return path


def test_keras_source_that_is_not_a_mobilenet_v2(sony_root, tmp_path):
    from sscma.apis.transfer_learn import prepare_transfer_config
    pytest.importorskip('tensorflow')
    conf = load_transfer_configuration(_configuration(sony_root, source_keras_model='model.h5',
                                                      output_dir=str(tmp_path / 'out')))
    with pytest.raises(ConfigError) as info:  # sony_root/model.h5 is 4 bytes of HDF5 signature
        prepare_transfer_config(conf)
    assert len(str(info.value).splitlines()) == 1
    assert "source_keras_model: " in str(info.value) and 'not a Keras model that tf_keras or Keras 3 can load' in str(
        info.value)


def test_end_to_end_from_keras_mobilenet_v2(sony_root, tmp_path):
    """configuration.json naming a Keras MobileNetV2 0.35 with top (.h5): converted, top dropped, trained."""
    src = _save_keras_mobilenet_v2(str(tmp_path / 'mobilenet_v2_0.35.h5'))
    path = _configuration(sony_root, source_model='', source_keras_model=src, output_dir=str(tmp_path / 'out'),
                          evaluate_result_dir=str(tmp_path / 'eval'))
    log, report = _transfer_learn(path, timeout=600)
    assert len(report) == 1 and 'source_keras_model.pth' in report[0] and 'head.fc.weight' in report[0], report
    results = json.load(open(tmp_path / 'eval' / 'results.json'))
    assert 0.0 <= results['top1'] <= 100.0 and results['classes'] == ['cat', 'dog', 'fox']
    ckpt = torch.load(results['checkpoint'], map_location='cpu')
    assert ckpt['state_dict']['backbone.features.0.0.weight'].shape == (16, 3, 3, 3)  # alpha 0.35
    from mmengine.config import Config
    cfg = Config.fromstring(ckpt['meta']['cfg'], '.py')  # the training config: Keras padding and scaling kept
    assert cfg.model.backbone.tf_padding is True and cfg.model.backbone.widen_factor == 0.35
    assert list(cfg.model.data_preprocessor.mean) == [127.5] * 3 and list(cfg.model.data_preprocessor.std) == [127.5] * 3
