"""Run an exported model with the task's own data pipeline, post-processing and metric.

:class:`BackendModel` is an mmengine ``BaseModel``: it holds the float model built from the config (for its
structure and post-processing only; its weights are not used), a copy of that model's data preprocessor
that leaves pixels un-normalised (the exported graph normalises them itself, see
:mod:`sscma.deploy.wrapper`), the backend of the export target that wrote the file (ONNX, TorchScript,
TFLite or a registered plug-in, :mod:`sscma.deploy.targets`) and the model's task for the
post-processing (:mod:`sscma.tasks`). ``tools/test.py CONFIG model.onnx``
builds it through the registry (``type='BackendModel'``), so the config's test dataloader and evaluator
are used unchanged.
"""
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.model import BaseModel
from torch import nn

from sscma.registry import MODELS
from sscma.tasks import supported_model_types, task_of
from sscma.utils import ExportError

from .targets import load_backend
from .wrapper import preprocessor_norm, raw_pixel_preprocessor, wrap_for_export

def postprocess(model: nn.Module, outputs: torch.Tensor, data_samples: List) -> List:
    """The data samples ``model.predict`` would return, from an exported graph's ``outputs`` (the model's task
    adapter, :meth:`~sscma.tasks.Task.postprocess`)."""
    return task_of(model).postprocess(model, outputs, data_samples)


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
        backend_file (str): A file written by ``tools/export.py`` (input: raw pixels, 0..255).
        input_hw (tuple, optional): ``(H, W)`` the data pipeline produces; checked against the file.
        num_threads (int, optional): Runtime threads (default: the runtime's choice).
        check_outputs (bool): Run one zero image through the file and the float model and compare the
            output shapes (catches a file exported from another config). Defaults to True.
        runtime (str, optional): The export target whose runtime runs the file, when not its own
            (``'tflm'``: an int8 ``.tflite`` in TensorFlow Lite Micro).
    """

    def __init__(self, model: Union[dict, nn.Module], backend_file: str, input_hw: Optional[Sequence[int]] = None,
                 num_threads: Optional[int] = None, check_outputs: bool = True, init_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None, runtime: Optional[str] = None) -> None:
        float_model = MODELS.build(model) if isinstance(model, dict) else model
        self.adapter = task_of(float_model)
        if not self.adapter.evaluable:
            raise ExportError(f'{backend_file}: evaluating an exported {type(float_model).__name__} is not '
                              f'supported yet (tasks: {", ".join(supported_model_types())})')
        super().__init__(data_preprocessor=raw_pixel_preprocessor(float_model.data_preprocessor), init_cfg=init_cfg)
        self.model = float_model.eval()
        self.backend_file = backend_file
        self.backend = load_backend(backend_file, num_threads, runtime)
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
            return self.adapter.postprocess(self.model, self.run_backend(inputs), data_samples)
        raise ExportError(f'an exported model ({self.backend_file}) cannot be trained: mode={mode!r}')


def config_input_hw(cfg) -> Optional[Tuple[int, int]]:
    """``(H, W)`` from a config's top-level ``imgsz = (width, height)``, or ``None``."""
    imgsz = cfg.get('imgsz')
    if isinstance(imgsz, int):
        return imgsz, imgsz
    if isinstance(imgsz, (tuple, list)) and len(imgsz) == 2:
        return int(imgsz[1]), int(imgsz[0])
    return None
