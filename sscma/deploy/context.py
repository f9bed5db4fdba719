"""What every export target of one run shares: the model, its traced wrapper, images and intermediate files."""
import os.path as osp
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch import nn

from sscma.utils import ExportError


class ExportContext:
    """One ``export_model`` run, handed to :meth:`ExportTarget.export`.

    Intermediate results several targets use (the float32 ONNX graph, the TensorFlow SavedModel, the int8
    calibration images) are built once through :meth:`artifact`; a failure is remembered and raised again
    for every target that needs it, instead of being retried.

    Args:
        model (nn.Module): The float model (eval mode).
        wrapper (nn.Module): The graph to export (:class:`~sscma.deploy.wrapper.RawInputWrapper`).
        shape (tuple): ``(C, H, W)`` of the exported input.
        stem (str): Checkpoint file name without suffix; files are ``<stem>_<precision><suffix>``.
        work_dir (str): Where requested files go.
        tmp_dir (str): Where intermediate files go (removed after the run).
        samples (list): Raw-pixel NCHW batches of validation images (parity, conversion checks).
        calibrate (callable): Returns the raw-pixel batches of training images that int8 calibrates on.
        options (dict): Target options from the command line (``vela_accelerator`` ...).
        meta (dict): What every file stores about itself (:mod:`sscma.deploy.model_meta`): class names,
            task, input and output layout.
    """

    def __init__(self, model: nn.Module, wrapper: nn.Module, shape: Tuple[int, int, int], stem: str, work_dir: str,
                 tmp_dir: str, samples: List[torch.Tensor], calibrate: Callable[[], List[torch.Tensor]],
                 options: Dict[str, Any], meta: Optional[Dict[str, Any]] = None) -> None:
        self.model, self.wrapper, self.shape, self.stem = model, wrapper, tuple(shape), stem
        self.work_dir, self.tmp_dir, self.samples, self.options = work_dir, tmp_dir, samples, options
        self._calibrate = calibrate
        self.meta = dict(meta or {})
        self._artifacts: Dict[Any, Tuple[bool, Any]] = {}
        self.files: Dict[Tuple[str, str], str] = {}  # (target, precision) -> file written in work_dir
        self.failed: Dict[Tuple[str, str], ExportError] = {}

    def artifact(self, key: Any, build: Callable[[], Any]) -> Any:
        """``build()``, once per run; an :class:`ExportError` it raised is raised again."""
        if key not in self._artifacts:
            try:
                self._artifacts[key] = (True, build())
            except ExportError as e:
                self._artifacts[key] = (False, e)
        ok, value = self._artifacts[key]
        if not ok:
            raise value
        return value

    def calibration(self) -> List[torch.Tensor]:
        """The int8 calibration batches (collected on first use)."""
        return self.artifact('calibration', self._calibrate)

    def sample_batch(self) -> torch.Tensor:
        """A batch of real images: the calibration images once collected, else validation images."""
        ok, calib = self._artifacts.get('calibration', (False, None))
        return (calib if ok and calib else self.samples)[0]

    def tmp_path(self, name: str) -> str:
        return osp.join(self.tmp_dir, name)

    def file_of(self, target: str, precision: str) -> Tuple[str, bool]:
        """The ``target`` / ``precision`` file another target is built from, and whether it is a requested
        file in the work dir (``True``) or an intermediate one, exported now into the temporary folder."""
        if (target, precision) in self.files:
            return self.files[(target, precision)], True
        if (target, precision) in self.failed:
            raise self.failed[(target, precision)]
        from .targets.base import get_target

        def build() -> str:
            dep = get_target(target)
            reason = dep.unavailable()
            if reason:
                raise ExportError(reason)
            path = self.tmp_path(dep.file_name(self.stem, precision))
            dep.export(self, precision, path)
            dep.write_meta(path, self.meta)
            return path

        return self.artifact(('file', target, precision), build), False
