"""Run an exported model (ONNX / TorchScript) with the task's own data pipeline, post-processing and metric.

:class:`BackendModel` is an mmengine ``BaseModel``: it holds the float model built from the config (for its
structure and post-processing only; its weights are not used), a copy of that model's data preprocessor
that leaves pixels un-normalised (the exported graph normalises them itself, see
:mod:`sscma.deploy.wrapper`) and a backend that runs the exported file. ``tools/test.py CONFIG model.onnx``
builds it through the registry (``type='BackendModel'``), so the config's test dataloader and evaluator
are used unchanged.
"""
import os.path as osp
import warnings
import zipfile
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.model import BaseModel
from torch import nn

from sscma.registry import MODELS
from sscma.utils import ExportError

from .wrapper import (is_dense_detector, preprocessor_norm, raw_pixel_preprocessor, unpack_detections,
                      wrap_for_export)

ONNX_SUFFIXES = ('.onnx', )


def backend_kind(path: str) -> Optional[str]:
    """``'onnx'`` or ``'torchscript'`` for an exported model file, ``None`` for anything else (a checkpoint)."""
    if osp.splitext(path)[1].lower() in ONNX_SUFFIXES:
        return 'onnx'
    if osp.splitext(path)[1].lower() == '.tflite':
        return 'tflite'
    if osp.isfile(path) and zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except (OSError, zipfile.BadZipFile):
            return None
        # torch.jit.save archives hold constants.pkl and code/; torch.save ones only data.pkl
        if any(n.endswith('/constants.pkl') for n in names) and any('/code/' in n for n in names):
            return 'torchscript'
    return None


class OnnxBackend:
    """An onnxruntime session on CPU. A graph with a fixed batch size is run sample by sample."""

    def __init__(self, path: str, num_threads: Optional[int] = None) -> None:
        import onnxruntime as ort
        opts = ort.SessionOptions()
        if num_threads:
            opts.intra_op_num_threads = num_threads
            opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(path, opts, providers=['CPUExecutionProvider'])
        except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise ExportError(f'{path}: onnxruntime cannot load this model: {e}') from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ExportError(f'{path}: expected a model with one image input, it has {len(inputs)}')
        self.path = path
        self.input_name = inputs[0].name
        self.input_shape = [d if isinstance(d, int) else None for d in inputs[0].shape]
        self.input_dtype = np.float16 if 'float16' in inputs[0].type else np.float32

    def __call__(self, images: np.ndarray) -> np.ndarray:
        images = images.astype(self.input_dtype, copy=False)
        fixed = self.input_shape[0] if self.input_shape else None
        if fixed and fixed != images.shape[0]:
            if images.shape[0] % fixed:
                raise ExportError(f'{self.path} has a fixed batch size of {fixed}; '
                                  f'a batch of {images.shape[0]} does not divide into it')
            return np.concatenate([self(images[i:i + fixed]) for i in range(0, images.shape[0], fixed)])
        out = self.session.run(None, {self.input_name: images})[0]
        return out.astype(np.float32, copy=False)


class TorchScriptBackend:
    """A ``torch.jit`` module on CPU (kept out of the ``nn.Module`` tree so ``.to(device)`` leaves it)."""

    def __init__(self, path: str) -> None:
        try:
            with warnings.catch_warnings():  # torch 2.14: "torch.jit.load is deprecated" FutureWarning
                warnings.simplefilter('ignore', FutureWarning)
                self.module = torch.jit.load(path, map_location='cpu').eval()
        except Exception as e:  # RuntimeError with a C++ trace
            raise ExportError(f'{path}: torch.jit.load cannot load this TorchScript model: '
                              f'{str(e).splitlines()[0]}') from None
        self.path = path
        self.input_shape = None

    @torch.no_grad()
    def __call__(self, images: np.ndarray) -> np.ndarray:
        out = self.module(torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)))
        return out.float().numpy()


def load_backend(path: str, num_threads: Optional[int] = None):
    """The backend for an exported file (see :func:`backend_kind`)."""
    if not osp.isfile(path):
        raise ExportError(f'exported model file not found: {path}')
    kind = backend_kind(path)
    if kind == 'onnx':
        return OnnxBackend(path, num_threads)
    if kind == 'torchscript':
        return TorchScriptBackend(path)
    if kind == 'tflite':
        from .tflite import TFLiteBackend
        return TFLiteBackend(path, num_threads)
    raise ExportError(f'{path}: not an exported model (expected .onnx, .tflite or a TorchScript .pt from '
                      'tools/export.py)')


def _fomo_cls():
    from sscma.models.detectors.fomo import Fomo
    return Fomo


def _image_classifier_cls():
    try:
        from mmpretrain.models.classifiers import ImageClassifier
    except ImportError:  # pragma: no cover - mmpretrain is part of the stack
        return ()
    return ImageClassifier


def task_of(model: nn.Module) -> Optional[str]:
    """``'fomo'``, ``'classification'``, ``'keypoints'`` or ``None`` (no post-processing for exported outputs)."""
    from sscma.models.detectors.keypoint_regressor import KeypointRegressor
    if isinstance(model, _fomo_cls()):
        return 'fomo'
    if isinstance(model, KeypointRegressor):
        return 'keypoints'
    if is_dense_detector(model):
        return 'detection'
    if isinstance(model, _image_classifier_cls()) and hasattr(getattr(model, 'head', None), '_get_predictions'):
        return 'classification'
    return None


def postprocess(model: nn.Module, outputs: torch.Tensor, data_samples: List) -> List:
    """Turn the exported graph's output into the data samples ``model.predict`` would return."""
    task = task_of(model)
    if task == 'fomo':  # exactly Fomo.predict, from the probabilities the graph returns
        results = model.head.predict_by_probs(outputs, [s.metainfo for s in data_samples])
        for sample, res in zip(data_samples, results):
            sample.pred_instances = res
            sample.set_metainfo(dict(fomo_stride=model.head.stride))
        return data_samples
    if task == 'classification':  # mmpretrain ClsHead.predict after its forward
        return model.head._get_predictions(outputs, data_samples)
    if task == 'keypoints':  # (B, K * 2) coordinates in [0, 1] of the network input
        return model.add_pred_to_datasample(outputs.reshape(outputs.shape[0], -1, 2), data_samples)
    if task == 'detection':  # mmdet's own decoding + NMS (head.predict_by_feat), as model.predict does
        metas = [s.metainfo for s in data_samples]
        input_hw = metas[0]['batch_input_shape']
        strides = [s[0] if isinstance(s, (tuple, list)) else s for s in model.bbox_head.prior_generator.strides]
        level_hw = [(-(-input_hw[0] // s), -(-input_hw[1] // s)) for s in strides]
        cls_scores, bbox_preds = unpack_detections(outputs.float(), level_hw, input_hw)
        results = model.bbox_head.predict_by_feat(cls_scores, bbox_preds, batch_img_metas=metas, rescale=True)
        return model.add_pred_to_datasample(data_samples, results)
    raise ExportError(f'evaluating an exported {type(model).__name__} is not supported yet '
                      '(supported: Fomo, mmpretrain.ImageClassifier, KeypointRegressor, mmdet dense detectors)')


def input_channels(model: nn.Module) -> int:
    """Image channels the model takes: its preprocessor's mean length, else its first conv's in_channels."""
    mean, _ = preprocessor_norm(model.data_preprocessor)
    if mean is not None:
        return int(mean.numel())
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m.in_channels
    return 3


@MODELS.register_module()
class BackendModel(BaseModel):
    """An exported model behind the float model's data pipeline and post-processing.

    Args:
        model (dict | BaseModel): The float model's config (as in the training config) or the model itself.
        backend_file (str): The exported ``.onnx`` or TorchScript ``.pt`` (input: raw pixels, 0..255).
        input_hw (tuple, optional): ``(H, W)`` the data pipeline produces; checked against the file.
        num_threads (int, optional): onnxruntime intra-op threads (default: onnxruntime's choice).
        check_outputs (bool): Run one zero image through the file and the float model and compare the
            output shapes (catches a file exported from another config). Defaults to True.
    """

    def __init__(self, model: Union[dict, nn.Module], backend_file: str, input_hw: Optional[Sequence[int]] = None,
                 num_threads: Optional[int] = None, check_outputs: bool = True, init_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None) -> None:
        float_model = MODELS.build(model) if isinstance(model, dict) else model
        if task_of(float_model) is None:
            raise ExportError(f'{backend_file}: evaluating an exported {type(float_model).__name__} is not '
                              'supported yet (supported: Fomo, mmpretrain.ImageClassifier, KeypointRegressor, mmdet '
                              'dense detectors)')
        super().__init__(data_preprocessor=raw_pixel_preprocessor(float_model.data_preprocessor), init_cfg=init_cfg)
        self.model = float_model.eval()
        self.backend_file = backend_file
        self.backend = load_backend(backend_file, num_threads)
        self.channels = input_channels(float_model)
        self.input_hw = tuple(int(v) for v in input_hw) if input_hw else None
        self._check_input_shape()
        if check_outputs and self.input_hw:
            self._check_output_shape()

    def _check_input_shape(self) -> None:
        fixed = getattr(self.backend, 'input_shape', None)
        if not fixed or len(fixed) != 4:
            return
        want = [None, self.channels, *(self.input_hw or (None, None))]
        for got, exp in zip(fixed[1:], want[1:]):
            if got is not None and exp is not None and got != exp:
                shape = 'x'.join(str(d) if d else '?' for d in fixed)
                raise ExportError(
                    f'{self.backend_file} takes input {shape} (NCHW) but the config feeds '
                    f'{self.channels}x{self.input_hw[0] if self.input_hw else "?"}x'
                    f'{self.input_hw[1] if self.input_hw else "?"} images; export with --input-shape matching '
                    'the config, or set --cfg-options imgsz="(W,H)" to the exported size')

    @torch.no_grad()
    def _check_output_shape(self) -> None:
        h, w = self.input_hw
        zeros = np.zeros((1, self.channels, h, w), np.float32)
        try:
            got = self.backend(zeros).shape
        except ExportError:
            raise
        except Exception as e:
            raise ExportError(f'{self.backend_file} fails on a 1x{self.channels}x{h}x{w} input: '
                              f'{str(e).splitlines()[0]}') from None
        device = next(self.model.parameters()).device
        want = wrap_for_export(self.model)(torch.from_numpy(zeros).to(device)).shape
        if tuple(got) != tuple(want):
            raise ExportError(f'{self.backend_file} outputs {tuple(got)} but the config\'s model gives '
                              f'{tuple(want)} for the same input: was it exported from another config '
                              '(num_classes, widen_factor ...)?')

    def run_backend(self, inputs: torch.Tensor) -> torch.Tensor:
        """Raw-pixel NCHW batch -> the graph's output, on the input's device."""
        out = self.backend(inputs.detach().float().cpu().numpy())
        return torch.from_numpy(out).to(inputs.device)

    def forward(self, inputs: torch.Tensor, data_samples: Optional[List] = None, mode: str = 'tensor'):
        if mode == 'tensor':
            return self.run_backend(inputs)
        if mode == 'predict':
            return postprocess(self.model, self.run_backend(inputs), data_samples)
        raise ExportError(f'an exported model ({self.backend_file}) cannot be trained: mode={mode!r}')


def config_input_hw(cfg) -> Optional[Tuple[int, int]]:
    """``(H, W)`` from a config's top-level ``imgsz = (width, height)``, or ``None``."""
    imgsz = cfg.get('imgsz')
    if isinstance(imgsz, int):
        return imgsz, imgsz
    if isinstance(imgsz, (tuple, list)) and len(imgsz) == 2:
        return int(imgsz[1]), int(imgsz[0])
    return None
