"""A local file backend whose writes are atomic, for checkpoints that survive a kill mid-save."""
import os
import os.path as osp
import tempfile
from pathlib import Path
from typing import Union

import mmengine
from mmengine.fileio import LocalBackend, register_backend


class AtomicLocalBackend(LocalBackend):
    """``LocalBackend`` writing to a temporary file in the same folder, then renaming it into place.

    A process killed while saving leaves at most a stray ``.tmp`` file, never a truncated checkpoint
    under the real name; ``last_checkpoint`` only ever names complete files.
    """

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        folder = osp.dirname(str(filepath)) or '.'
        mmengine.mkdir_or_exist(folder)
        fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(str(filepath))}.', suffix='.tmp', dir=folder)
        try:
            with os.fdopen(fd, 'wb') as f:
                f.write(obj)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, filepath)
        except BaseException:
            if osp.exists(tmp):
                os.remove(tmp)
            raise

    def put_text(self, obj: str, filepath: Union[str, Path], encoding: str = 'utf-8') -> None:
        self.put(obj.encode(encoding), filepath)


register_backend('atomic_local', AtomicLocalBackend, force=True)
