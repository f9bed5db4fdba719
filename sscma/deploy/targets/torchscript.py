"""TorchScript (``--targets torchscript``): ``torch.jit.trace`` of the export graph, float32 or float16."""
import copy
import warnings
import zipfile
from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch
from torch import nn

from sscma.deploy.model_meta import read_torchscript_meta, write_torchscript_meta
from sscma.registry import EXPORT_TARGETS
from sscma.utils import ExportError

from .base import ExportTarget
from .onnx import _quiet


@EXPORT_TARGETS.register_module('torchscript')
class TorchScriptTarget(ExportTarget):
    """A traced ``.pt`` for libtorch / PyTorch Mobile; the float16 file computes in half precision inside."""
    suffix = '.pt'
    precisions = ('float32', 'float16')
    unsupported_reason = 'TorchScript has no int8 export here (use ONNX or TFLite int8)'
    runtime = 'torch.jit (CPU)'

    def export(self, ctx, precision: str, path: str) -> Dict[str, Any]:
        export_torchscript(ctx.wrapper, ctx.shape, path, half=precision == 'float16')
        return {}

    def recognizes(self, path: str) -> int:
        """Any ``torch.jit.save`` archive (its name aside): a zip with ``constants.pkl`` and ``code/``, which
        ``torch.save`` checkpoints do not have."""
        if not zipfile.is_zipfile(path):
            return 0
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except (OSError, zipfile.BadZipFile):
            return 0
        traced = any(n.endswith('/constants.pkl') for n in names) and any('/code/' in n for n in names)
        return 1 if traced else 0

    def load(self, path: str, num_threads: Optional[int] = None) -> 'TorchScriptBackend':
        return TorchScriptBackend(path)

    def write_meta(self, path: str, meta: Dict[str, Any]) -> None:
        write_torchscript_meta(path, meta)

    def read_meta(self, path: str) -> Optional[Dict[str, Any]]:
        return read_torchscript_meta(path)


def export_torchscript(wrapper: nn.Module, shape: Tuple[int, int, int], path: str, half: bool = False) -> None:
    module = copy.deepcopy(wrapper).half() if half else wrapper
    dummy = torch.rand(2, *shape, generator=torch.Generator().manual_seed(0)) * 255
    with _quiet(), torch.no_grad():
        traced = torch.jit.trace(module, (dummy, ), check_trace=False)
        torch.jit.save(traced, path)


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
