"""What ``tools/inference.py`` writes: annotated images or video and ``predictions.json``, all or nothing.

Files are written into a hidden staging folder inside the output folder and moved into place when the run
completes; a run that stops on an error (an unreadable image halfway through a folder) leaves the output
folder as it was. A preview window (``--show``) is opened only where there is a display.
"""
import json
import os
import os.path as osp
import shutil
import sys
import tempfile
from typing import Any, List, Optional, Tuple

import cv2
import numpy as np

from sscma.utils import DatasetError


def _bgr(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 else rgb


class AnnotatedOutput:
    """The files of one inference run in ``out_dir``; use as a context manager.

    Args:
        out_dir (str): Output folder (created; what it already holds is only replaced by files of the same
            name when the run completes).
    """

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir
        self._created = not osp.isdir(out_dir)
        os.makedirs(out_dir, exist_ok=True)
        self.staging = tempfile.mkdtemp(prefix='.inference-', dir=out_dir)
        self.names: List[str] = []
        self._video: Optional[cv2.VideoWriter] = None

    def __enter__(self) -> 'AnnotatedOutput':
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.discard()

    def _staged(self, name: str) -> str:
        path = osp.join(self.staging, name)
        os.makedirs(osp.dirname(path), exist_ok=True)
        self.names.append(name)
        return path

    def write_image(self, name: str, rgb: np.ndarray) -> None:
        """Stage an annotated image (RGB) as ``name`` (its extension picks the format)."""
        path = self._staged(name)
        if not cv2.imwrite(path, _bgr(rgb)):
            raise DatasetError(f'cannot write the annotated image {osp.join(self.out_dir, name)} (OpenCV has no '
                               f'encoder for {osp.splitext(name)[1]}?)')

    def open_video(self, name: str, fps: float, size: Tuple[int, int]) -> None:
        """Stage an annotated video ``name`` (``.avi``: MJPG, else mp4v) at ``fps``, ``size`` = (width, height)."""
        codec = 'MJPG' if name.lower().endswith('.avi') else 'mp4v'
        self._video = cv2.VideoWriter(self._staged(name), cv2.VideoWriter_fourcc(*codec), fps, tuple(size))
        if not self._video.isOpened():
            raise DatasetError(f'cannot write the annotated video {osp.join(self.out_dir, name)} ({codec} codec)')

    def write_frame(self, rgb: np.ndarray) -> None:
        frame = _bgr(rgb)
        self._video.write(frame if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))

    def commit(self, predictions: Any, json_name: str = 'predictions.json') -> List[str]:
        """Move the staged files into the output folder, write ``predictions`` as JSON (atomically); return
        the paths written."""
        if self._video is not None:
            self._video.release()
            self._video = None
        written = []
        for name in self.names:
            target = osp.join(self.out_dir, name)
            os.makedirs(osp.dirname(target), exist_ok=True)
            os.replace(osp.join(self.staging, name), target)
            written.append(target)
        json_path = osp.join(self.out_dir, json_name)
        tmp = osp.join(self.staging, json_name)
        with open(tmp, 'w', encoding='utf-8') as f:
            json.dump(predictions, f, indent=1)
        os.replace(tmp, json_path)
        shutil.rmtree(self.staging, ignore_errors=True)
        return written + [json_path]

    def discard(self) -> None:
        """Remove everything this run staged (and the output folder if the run created it and it is empty)."""
        if self._video is not None:
            self._video.release()
            self._video = None
        shutil.rmtree(self.staging, ignore_errors=True)
        if self._created and osp.isdir(self.out_dir) and not os.listdir(self.out_dir):
            os.rmdir(self.out_dir)


class PreviewWindow:
    """``--show``: an OpenCV window with each annotated image or frame; ``q`` or Esc stops the run.

    Where there is no display (no ``DISPLAY`` / ``WAYLAND_DISPLAY`` on Linux, or an OpenCV built without a
    GUI), one line says so and the run goes on writing files.
    """

    def __init__(self, enabled: bool, title: str = 'sscma') -> None:
        self.title = title
        self.enabled = False
        if not enabled:
            return
        if sys.platform.startswith('linux') and not (os.environ.get('DISPLAY') or os.environ.get('WAYLAND_DISPLAY')):
            print('--show: no display here (DISPLAY is not set); writing the files only')
            return
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error as e:
            print(f'--show: OpenCV cannot open a window ({str(e).strip().splitlines()[-1]}); writing the files only')
            return
        self.enabled = True

    def show(self, rgb: np.ndarray, wait_ms: int = 1) -> bool:
        """Show ``rgb``; ``False`` when the user asked to stop."""
        if not self.enabled:
            return True
        cv2.imshow(self.title, _bgr(rgb))
        return (cv2.waitKey(wait_ms) & 0xFF) not in (ord('q'), 27)

    def close(self) -> None:
        if self.enabled:
            cv2.destroyWindow(self.title)
            self.enabled = False
