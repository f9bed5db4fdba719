"""Image loading that names the file at fault and applies a policy to unreadable images."""
from typing import Dict, Optional

from mmcv.transforms import LoadImageFromFile
from mmengine.logging import MMLogger

from sscma.registry import TRANSFORMS
from sscma.utils.errors import DatasetError


@TRANSFORMS.register_module()
class LoadImage(LoadImageFromFile):
    """mmcv's ``LoadImageFromFile`` with a policy for corrupt, truncated or missing images.

    Args:
        on_error (str): ``'skip'`` logs a warning naming the file and lets the dataset draw another sample
            (mmengine's refetch); ``'fail'`` raises :class:`DatasetError` naming the file. Defaults to
            ``'skip'``.
        **kwargs: Passed to ``LoadImageFromFile`` (``color_type``, ``to_float32``, ...).
    """
    skipped = 0  # per process

    def __init__(self, on_error: str = 'skip', **kwargs) -> None:
        if on_error not in ('skip', 'fail'):
            raise DatasetError(f"LoadImage: on_error={on_error!r}, expected 'skip' or 'fail'")
        kwargs.pop('ignore_empty', None)
        super().__init__(ignore_empty=False, **kwargs)
        self.on_error = on_error

    def transform(self, results: Dict) -> Optional[Dict]:
        path = results.get('img_path')
        try:
            out = super().transform(results)
            if out is None or out.get('img') is None:
                raise ValueError('decoder returned nothing')
            return out
        except Exception as e:  # cv2/PIL raise many types for broken files
            if self.on_error == 'fail':
                raise DatasetError(f'cannot read image {path}: {e}') from None
            LoadImage.skipped += 1
            MMLogger.get_current_instance().warning(
                f'skipping unreadable image {path} ({type(e).__name__}: {e}); {LoadImage.skipped} skipped so far '
                'in this process (set on_error="fail" in LoadImage to stop instead)')
            return None
