"""What ``tools/inference.py`` reads: image files (one, a folder, a glob), a video file or a camera.

:func:`open_source` checks the SOURCE argument before anything is built or written and says in one line what
is wrong with it (missing path, unsupported extension, a folder without images, a video OpenCV cannot open).
"""
import glob
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Iterator, List, Optional, Tuple

import cv2
import numpy as np

from sscma.utils import ConfigError, DatasetError

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
VIDEO_SUFFIXES = ('.mp4', '.avi', '.mov', '.mkv', '.m4v', '.webm', '.mpg', '.mpeg', '.wmv')


def _is_image(path: str) -> bool:
    return osp.splitext(path)[1].lower() in IMAGE_SUFFIXES


@dataclass
class MediaSource:
    """A checked SOURCE.

    Attributes:
        kind (str): ``'images'``, ``'video'`` or ``'camera'``.
        name (str): SOURCE as given.
        files (list): Image files, sorted (``'images'``); the video file (``'video'``).
        root (str): Folder the image files' output names are relative to.
        camera (int, optional): Camera index (``'camera'``).
    """
    kind: str
    name: str
    files: List[str] = field(default_factory=list)
    root: str = ''
    camera: Optional[int] = None

    def output_name(self, path: Optional[str] = None) -> str:
        """Name of the annotated file under the output folder: an image's path relative to :attr:`root`;
        ``<video stem>.mp4`` (``.avi`` for ``.avi`` input, MJPG) for a video; ``camera<N>.mp4`` for a camera."""
        if self.kind == 'images':
            return osp.relpath(osp.abspath(path), self.root)
        if self.kind == 'camera':
            return f'camera{self.camera}.mp4'
        stem, ext = osp.splitext(osp.basename(self.files[0]))
        return stem + ('.avi' if ext.lower() == '.avi' else '.mp4')


def open_source(source: str) -> MediaSource:
    """Check SOURCE: an image file, a folder of images, a glob (``'data/*.jpg'``), a video file or a camera
    index (digits).

    Raises:
        ConfigError: it does not exist, has an unsupported extension, or names no image.
    """
    source = str(source)
    if source.isdigit():
        return MediaSource('camera', source, camera=int(source))
    kinds = f'images ({", ".join(IMAGE_SUFFIXES)}), videos ({", ".join(VIDEO_SUFFIXES)}) or a camera index (0)'
    if osp.isdir(source):
        files = sorted(osp.join(source, n) for n in os.listdir(source) if _is_image(n)
                       and osp.isfile(osp.join(source, n)))
        if not files:
            raise ConfigError(f'SOURCE {source}: no image files ({", ".join(IMAGE_SUFFIXES)}) in this folder')
        return MediaSource('images', source, files, root=osp.abspath(source))
    if osp.isfile(source):
        ext = osp.splitext(source)[1].lower()
        if ext in IMAGE_SUFFIXES:
            return MediaSource('images', source, [source], root=osp.dirname(osp.abspath(source)))
        if ext in VIDEO_SUFFIXES:
            return MediaSource('video', source, [source])
        raise ConfigError(f'SOURCE {source}: unsupported file type {ext or "(no extension)"}; expected {kinds}')
    if glob.has_magic(source):
        matched = sorted(p for p in glob.glob(source, recursive=True) if osp.isfile(p))
        files = [p for p in matched if _is_image(p)]
        if not files:
            what = f'{len(matched)} files, none an image' if matched else 'nothing'
            raise ConfigError(f'SOURCE {source}: the pattern matches {what} ({", ".join(IMAGE_SUFFIXES)})')
        root = osp.commonpath([osp.dirname(osp.abspath(p)) for p in files])
        return MediaSource('images', source, files, root=root)
    raise ConfigError(f'SOURCE {source}: no such file or folder (expected {kinds})')


class VideoFrames:
    """Frames of a video file or camera, BGR ``uint8`` as OpenCV decodes them.

    Raises:
        DatasetError: the video or camera cannot be opened, or its first frame cannot be read.
    """

    def __init__(self, source: MediaSource) -> None:
        self.source = source
        what = f'camera {source.camera}' if source.kind == 'camera' else f'video {source.name}'
        self.what = what
        self.capture = cv2.VideoCapture(source.camera if source.kind == 'camera' else source.files[0])
        if not self.capture.isOpened():
            raise DatasetError(f'cannot open {what} (OpenCV found no decoder or device for it)')
        ok, first = self.capture.read()
        if not ok or first is None:
            self.capture.release()
            raise DatasetError(f'{what}: no frame could be read (empty or damaged file?)')
        self._first = first
        fps = self.capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and np.isfinite(fps) and fps > 0 else 25.0
        self.size = (first.shape[1], first.shape[0])  # (width, height)
        count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.stated_frames = count if source.kind == 'video' and count > 0 else None

    def __iter__(self) -> Iterator[Tuple[int, np.ndarray]]:
        index, frame = 0, self._first
        try:
            while frame is not None:
                if frame.shape[:2] != (self.size[1], self.size[0]):
                    raise DatasetError(f'{self.what}: frame {index} is {frame.shape[1]}x{frame.shape[0]}, '
                                       f'the first was {self.size[0]}x{self.size[1]}')
                yield index, frame
                ok, frame = self.capture.read()
                frame = frame if ok else None
                index += 1
        finally:
            self.capture.release()
