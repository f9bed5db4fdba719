"""Transfer learning driven by a Sony AITRIOS-style ``configuration.json`` (``tools/transfer_learn.py``).

The keys are those of the AITRIOS "Model Training" transfer-learning notebook::

    {
      "source_model": "",                              # an sscma .pth; empty/absent: ImageNet MobileNetV2-1.0
      "dataset_training_dir": "./dataset/training",    # <class>/*.jpg
      "dataset_validation_dir": "./dataset/validation",
      "batch_size": 16,
      "input_tensor_size": 96,                         # or [height, width]
      "epochs": 15,
      "output_dir": "./output",                        # checkpoints, logs, training curves
      "evaluate_result_dir": "./evaluate_result"       # results.json of the final model on the validation set
    }

``source_model`` / ``source_keras_model`` may also name a Keras MobileNetV2 (``.h5``, ``.keras`` or a SavedModel
folder; any alpha, with or without top), as the AITRIOS spec allows: its weights are converted to sscma's
MobileNetV2 (:mod:`sscma.models.utils.keras_mobilenet_v2`) and its top dropped. Every key is checked before
anything is trained. Relative paths are relative to the folder of ``configuration.json``.
"""
import ast
import difflib
import json
import os
import os.path as osp
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from mmengine.config import Config

from sscma.datasets.image_folder import IMG_EXTENSIONS, _class_dirs, read_labels_json
from sscma.utils import ConfigError, SSCMAError, load_config, register_all_modules

from .runner import prepare_train_config

TRANSFER_CONFIG = 'classification/mobilenetv2_1.0_transfer'  # a packaged config (sscma configs)
SOURCE_KEYS = ('source_model', 'source_keras_model')
REQUIRED_KEYS = ('dataset_training_dir', 'dataset_validation_dir', 'batch_size', 'input_tensor_size', 'epochs',
                 'output_dir', 'evaluate_result_dir')
CONFIGURATION_KEYS = SOURCE_KEYS + REQUIRED_KEYS
NOT_TRAINABLE_SUFFIXES = ('.pb', '.tflite')  # a graph without Keras layers / an int8 deployment file
MIN_INPUT_SIZE = 32  # MobileNetV2 downsamples by 32


@dataclass
class TransferConfiguration:
    """A validated ``configuration.json``: absolute paths, the input as (height, width), the class names.

    ``source_model`` is empty for the default ImageNet MobileNetV2; ``labels_file`` is empty when the class ids
    are the sorted class-folder names.
    """
    path: str
    source_model: str
    training_dir: str
    validation_dir: str
    batch_size: int
    input_hw: Tuple[int, int]
    epochs: int
    output_dir: str
    evaluate_result_dir: str
    classes: List[str]
    labels_file: str
    source_key: str = 'source_model'


def _resolve(base: str, value: str) -> str:
    return osp.abspath(osp.join(base, osp.expanduser(value)))


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _image_counts(folder: str) -> Dict[str, int]:
    return {c: sum(f.lower().endswith(IMG_EXTENSIONS) for f in os.listdir(osp.join(folder, c)))
            for c in _class_dirs(folder)}


def _check_class_folder(key: str, value: Any, base: str, errors: List[str]) -> Optional[Tuple[str, Dict]]:
    if not isinstance(value, str) or not value:
        errors.append(f'{key} must be a folder path (a non-empty string), got {value!r}')
        return None
    folder = _resolve(base, value)
    if not osp.isdir(folder):
        errors.append(f'{key}={value!r}: folder {folder} does not exist')
        return None
    counts = _image_counts(folder)
    if not counts:
        errors.append(f'{key}={value!r}: no class folders in {folder} (expected {folder}/<class>/*.jpg)')
        return None
    empty = sorted(c for c, n in counts.items() if n == 0)
    if len(empty) == len(counts):
        errors.append(f'{key}={value!r}: no images ({", ".join(IMG_EXTENSIONS)}) in the class folders of {folder}')
        return None
    if empty and key == 'dataset_training_dir':
        errors.append(f'{key}={value!r}: class folders without images in {folder}: {empty}')
        return None
    return folder, counts


def _check_source(conf: Dict[str, Any], base: str, errors: List[str]) -> str:
    given = {k: conf[k] for k in SOURCE_KEYS if conf.get(k) not in (None, '')}
    if len(given) > 1:
        errors.append(f'give one of {" / ".join(SOURCE_KEYS)}, not both ({given})')
        return ''
    if not given:
        return ''
    key, value = next(iter(given.items()))
    if not isinstance(value, str):
        errors.append(f'{key} must be a checkpoint path (a string), got {value!r}')
        return ''
    path = _resolve(base, value)
    from sscma.models.utils.keras_mobilenet_v2 import SUPPORTED, is_keras_model
    if value.lower().endswith(NOT_TRAINABLE_SUFFIXES):
        errors.append(f'{key}={value!r}: a {osp.splitext(value)[1]} file cannot be trained from; give {SUPPORTED} '
                      f'(for a .pb: its SavedModel folder), an sscma .pth checkpoint, or leave {key} empty for the '
                      'ImageNet MobileNetV2')
        return ''
    if is_keras_model(path):
        if not osp.exists(path):
            errors.append(f'{key}={value!r}: no such Keras model {path}')
            return ''
        return path  # read (and checked to be a MobileNetV2) when the training config is prepared
    if not osp.isfile(path):
        errors.append(f'{key}={value!r}: no such checkpoint file {path}')
        return ''
    try:
        ckpt = _load_checkpoint(path)
    except SSCMAError as e:
        errors.append(f'{key}={value!r}: {e}')
        return ''
    del ckpt
    return path


def _load_checkpoint(path: str) -> dict:
    from sscma.utils.checkpoint import CheckpointError, read_checkpoint, state_dict_of
    try:
        ckpt = read_checkpoint(path)
        state_dict_of(ckpt)
    except CheckpointError as e:
        raise SSCMAError(str(e)) from None
    return ckpt


def _check_input_size(value: Any, errors: List[str]) -> Optional[Tuple[int, int]]:
    hw = [value, value] if not isinstance(value, (list, tuple)) else list(value)
    if len(hw) != 2 or not all(_positive_int(v) for v in hw):
        errors.append(f'input_tensor_size must be a positive integer or [height, width], got {value!r}')
        return None
    if min(hw) < MIN_INPUT_SIZE:
        errors.append(f'input_tensor_size={value!r}: at least {MIN_INPUT_SIZE} pixels per side '
                      f'(MobileNetV2 downsamples by {MIN_INPUT_SIZE})')
        return None
    return hw[0], hw[1]


def _find_labels(training_dir: str) -> str:
    for folder in (training_dir, osp.dirname(training_dir)):
        path = osp.join(folder, 'labels.json')
        if osp.isfile(path):
            return path
    return ''


def load_transfer_configuration(path: str) -> TransferConfiguration:
    """Read ``configuration.json`` and check every key before anything is trained.

    Raises:
        ConfigError: One line per missing or invalid key (type, sign, folder missing, no class folders,
            training and validation classes differ, unknown key with the closest known one, Keras model).
    """
    if not osp.isfile(path):
        raise ConfigError(f'configuration file not found: {path}')
    try:
        with open(path, encoding='utf-8') as f:
            conf = json.load(f)
    except json.JSONDecodeError as e:
        raise ConfigError(f'{path}:{e.lineno}:{e.colno}: not valid JSON ({e.msg})') from None
    if not isinstance(conf, dict):
        raise ConfigError(f'{path}: expected a JSON object {{"dataset_training_dir": ..., ...}}, '
                          f'got {type(conf).__name__}')
    base = osp.dirname(osp.abspath(path))
    errors: List[str] = []
    for key in conf:
        if key not in CONFIGURATION_KEYS:
            close = difflib.get_close_matches(key, CONFIGURATION_KEYS, n=1, cutoff=0.6)
            hint = f'; did you mean {close[0]!r}?' if close else f' (known keys: {", ".join(CONFIGURATION_KEYS)})'
            errors.append(f'unknown key {key!r}{hint}')
    for key in REQUIRED_KEYS:
        if key not in conf:
            errors.append(f'missing key {key!r}')
    source = _check_source(conf, base, errors)
    for key in ('batch_size', 'epochs'):
        if key in conf and not _positive_int(conf[key]):
            errors.append(f'{key} must be a positive integer, got {conf[key]!r}')
    input_hw = _check_input_size(conf['input_tensor_size'], errors) if 'input_tensor_size' in conf else None
    folders = {}
    for key in ('dataset_training_dir', 'dataset_validation_dir'):
        if key in conf:
            folders[key] = _check_class_folder(key, conf[key], base, errors)
    outputs = {}
    for key in ('output_dir', 'evaluate_result_dir'):
        value = conf.get(key)
        if key not in conf:
            continue
        if not isinstance(value, str) or not value:
            errors.append(f'{key} must be a folder path (a non-empty string), got {value!r}')
        elif osp.exists(_resolve(base, value)) and not osp.isdir(_resolve(base, value)):
            errors.append(f'{key}={value!r}: {_resolve(base, value)} exists and is not a folder')
        else:
            outputs[key] = _resolve(base, value)
    train, val = folders.get('dataset_training_dir'), folders.get('dataset_validation_dir')
    classes, labels_file = [], ''
    if train and val:
        if len(train[1]) < 2:
            errors.append(f'dataset_training_dir: a classifier needs at least 2 class folders, {train[0]} has '
                          f'{sorted(train[1])}')
        only_train, only_val = sorted(set(train[1]) - set(val[1])), sorted(set(val[1]) - set(train[1]))
        if only_train or only_val:
            sides = [f'only in {name} {names}' for name, names in (('training', only_train), ('validation', only_val))
                     if names]
            errors.append(f'training and validation classes differ: {", ".join(sides)}')
        labels_file = _find_labels(train[0])
        classes = sorted(train[1])
        if labels_file:
            try:
                classes = read_labels_json(labels_file)
            except SSCMAError as e:
                errors.append(str(e))
            unknown = sorted(set(train[1]) - set(classes))
            if classes and unknown:
                errors.append(f'class folders {unknown} of dataset_training_dir are not in {labels_file} '
                              f'(it lists {classes})')
    if errors:
        raise ConfigError('\n'.join(f'{path}: {e}' for e in errors))
    return TransferConfiguration(path=path, source_model=source, training_dir=train[0], validation_dir=val[0],
                                 batch_size=conf['batch_size'], input_hw=input_hw, epochs=conf['epochs'],
                                 output_dir=outputs['output_dir'], evaluate_result_dir=outputs['evaluate_result_dir'],
                                 classes=classes, labels_file=labels_file,
                                 source_key=next((k for k in SOURCE_KEYS if conf.get(k) not in (None, '')),
                                                 SOURCE_KEYS[0]))


def source_model_settings(ckpt: dict) -> Dict[str, Any]:
    """``widen_factor``, ``mean`` and ``std`` the source checkpoint was trained with, read from its metadata.

    mmengine stores the training config as text in ``meta['cfg']``; its top-level variables are parsed (not
    executed) with :mod:`ast`. The converted ImageNet weights carry ``meta['widen_factor']``.
    """
    meta = ckpt.get('meta') if isinstance(ckpt, dict) else None
    if not isinstance(meta, dict):
        return {}
    if 'widen_factor' in meta:  # converted weights (ImageNet, Keras): their metadata says what they expect
        found: Dict[str, Any] = dict(widen_factor=float(meta['widen_factor']))
        found.update({k: list(meta[k]) for k in ('mean', 'std') if k in meta})
        if meta.get('tf_padding'):
            found['model.backbone.tf_padding'] = True
        if meta.get('channels'):
            found['model.backbone.channels'] = meta['channels']
            found['model.head.in_channels'] = meta['channels'][-1]
        return found
    try:
        tree = ast.parse(meta.get('cfg') or '')
    except (SyntaxError, ValueError, TypeError):
        return {}
    found = {}
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id in ('widen_factor', 'mean', 'std')):
            try:
                found[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return found


def prepare_transfer_config(conf: TransferConfiguration, config: str = TRANSFER_CONFIG,
                            cfg_options: Optional[Dict[str, Any]] = None) -> Config:
    """The training config for ``conf``: ``config`` with its size, classes, data folders and source model.

    Train and validation read the two folders of ``conf`` (their class folders directly); the test loader
    reads the validation folder too. The source checkpoint's ``widen_factor`` / ``mean`` / ``std`` are kept.

    Raises:
        ConfigError: the source checkpoint has no backbone tensor that fits the model.
    """
    from sscma.models.pretrained import imagenet_mobilenet_v2_checkpoint
    from sscma.models.utils.keras_mobilenet_v2 import is_keras_model
    from sscma.registry import MODELS
    from sscma.utils.checkpoint import match_state_dict, state_dict_of
    register_all_modules()
    source = conf.source_model or imagenet_mobilenet_v2_checkpoint()
    if is_keras_model(source):
        source = convert_keras_source(conf, config)
    ckpt = _load_checkpoint(source)
    height, width = conf.input_hw
    options = dict(num_classes=len(conf.classes), imgsz=(width, height), batch=conf.batch_size,
                   max_epochs=conf.epochs)
    options.update(source_model_settings(ckpt))
    options.update(cfg_options or {})
    cfg = prepare_train_config(config, conf.output_dir, options, load_from=source)
    for loader, folder in (('train_dataloader', conf.training_dir), ('val_dataloader', conf.validation_dir),
                           ('test_dataloader', conf.validation_dir)):
        cfg[loader].dataset.update(data_root=folder, split='', builtin=None,
                                   labels_file=conf.labels_file or 'labels.json')

    state = state_dict_of(ckpt)
    model_state = MODELS.build(cfg.model).state_dict()
    _, report = match_state_dict(model_state, state)
    if not any(k.startswith('backbone.') for k in report['loaded']):
        shown = [f'{k} {list(a)} vs {list(b)}' for k, a, b in report['reshaped'][:2]] or report['missing'][:2]
        raise ConfigError(f'{conf.path}: source model {source} has no backbone tensor that fits '
                          f'{cfg.model.backbone.type}(widen_factor={cfg.model.backbone.get("widen_factor")}) of '
                          f'{config} (e.g. {", ".join(shown)}); give a checkpoint of that backbone')
    return cfg


def convert_keras_source(conf: TransferConfiguration, config: str) -> str:
    """Convert the Keras MobileNetV2 of ``conf`` to ``output_dir/source_keras_model.pth`` and return that path.

    Raises:
        ConfigError: the model is unreadable or not a MobileNetV2, TensorFlow is missing, or ``config`` has
            another backbone than sscma's MobileNetV2.
    """
    import torch

    from sscma.models.utils.keras_mobilenet_v2 import convert_keras_mobilenet_v2
    key = conf.source_key
    backbone = str(load_config(config).model.get('backbone', {}).get('type', '')).split('.')[-1]
    if backbone != 'MobileNetV2':
        raise ConfigError(f'{conf.path}: {key}: a Keras MobileNetV2 converts to sscma\'s MobileNetV2 only; {config} '
                          f'has the backbone {backbone!r}')
    try:
        ckpt = convert_keras_mobilenet_v2(conf.source_model)
    except SSCMAError as e:
        raise ConfigError(f'{conf.path}: {key}: {e}') from None
    if ckpt['meta']['in_channels'] != 3:
        raise ConfigError(f'{conf.path}: {key}: the Keras model takes {ckpt["meta"]["in_channels"]}-channel images; '
                          'class folders are read as RGB (3 channels)')
    os.makedirs(conf.output_dir, exist_ok=True)
    out = osp.join(conf.output_dir, 'source_keras_model.pth')
    torch.save(ckpt, out + '.tmp')
    os.replace(out + '.tmp', out)
    return out


def write_evaluation(conf: TransferConfiguration) -> Dict[str, Any]:
    """Write ``evaluate_result_dir/results.json`` (and the confusion matrix PNG) for the trained model.

    The numbers are the final model's metrics on ``dataset_validation_dir``, i.e. the last validation of the
    training run (``output_dir/results.json``), with the class names and the checkpoint paths.
    """
    from sscma.visualization import plot_confusion_matrix
    with open(osp.join(conf.output_dir, 'results.json'), encoding='utf-8') as f:
        run = json.load(f)
    metrics = run.get('val') or {}
    if 'accuracy/top1' not in metrics:
        raise SSCMAError(f'{conf.output_dir}/results.json has no validation accuracy; did training run?')
    os.makedirs(conf.evaluate_result_dir, exist_ok=True)
    result = {
        'top1': metrics['accuracy/top1'],
        'metrics': metrics,
        'classes': run.get('classes', conf.classes),
        'dataset_validation_dir': conf.validation_dir,
        'checkpoint': run.get('last_checkpoint'),
        'best': run.get('best', {}),
        'configuration': osp.abspath(conf.path),
    }
    matrix = run.get('val_confusion_matrix')
    if matrix:
        result['confusion_matrix'] = matrix
        result['num_images'] = int(np.sum(matrix))
        result['confusion_matrix_png'] = plot_confusion_matrix(
            np.array(matrix), result['classes'], osp.join(conf.evaluate_result_dir, 'confusion_matrix.png'),
            title='validation confusion matrix')
    out = osp.join(conf.evaluate_result_dir, 'results.json')
    with open(out + '.tmp', 'w', encoding='utf-8') as f:
        json.dump(result, f, indent=2)
    os.replace(out + '.tmp', out)
    result['results_file'] = out
    return result


def transfer_learn(configuration: str, config: str = TRANSFER_CONFIG,
                   cfg_options: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Validate ``configuration.json``, train ``config`` on its folders and write the evaluation.

    Returns:
        dict: What was written to ``evaluate_result_dir/results.json`` plus ``results_file``.
    """
    from mmengine.runner import Runner
    conf = load_transfer_configuration(configuration)
    cfg = prepare_transfer_config(conf, config, cfg_options)
    Runner.from_cfg(cfg).train()
    return write_evaluation(conf)
