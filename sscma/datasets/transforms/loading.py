"""Image loading that names the file at fault and applies a policy to unreadable images."""
from typing import Dict, Optional

from mmcv.transforms import LoadImageFromFile
from mmengine.logging import MMLogger

from sscma.registry import TRANSFORMS
from sscma.utils.errors import DatasetError


@TRANSFORMS.register_module()
class LoadImage(LoadImageFromFile):
    """mmcv's ``LoadImageFromFile`` with a policy for corrupt, truncated or missing images.

    Images are decoded as mmcv does: EXIF orientation applied (``color_type='color'``, the upright picture
    that Roboflow, CVAT in a browser and Ultralytics annotate), grayscale / RGBA / palette / 16-bit files
    converted to 8-bit BGR (or to one channel for ``'grayscale'``). When the dataset states the image's size
    (``width`` / ``height`` of a COCO, YOLO or VOC annotation) and the decoded picture differs, its boxes
    would land in the wrong place: that is a :class:`DatasetError` naming the file, whatever ``on_error``.

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
        except Exception as e:  # cv2/PIL raise many types for broken files
            if self.on_error == 'fail':
                raise DatasetError(f'cannot read image {path}: {e}') from None
            LoadImage.skipped += 1
            MMLogger.get_current_instance().warning(
                f'skipping unreadable image {path} ({type(e).__name__}: {e}); {LoadImage.skipped} skipped so far '
                'in this process (set on_error="fail" in LoadImage to stop instead)')
            return None
        self._check_stated_size(out)
        return out

    def _check_stated_size(self, results: Dict) -> None:
        stated = results.get('width'), results.get('height')
        if not all(isinstance(v, (int, float)) for v in stated):
            return
        h, w = results['img'].shape[:2]
        if (w, h) == tuple(int(v) for v in stated):
            return
        hint = ''
        if (h, w) == tuple(int(v) for v in stated):
            hint = (' (width and height swapped: the file has an EXIF orientation that the annotation tool '
                    "ignored, as labelImg does; load with LoadImage(color_type='color_ignore_orientation') if "
                    'all files were annotated that way, or re-export them upright)')
        raise DatasetError(f'{results.get("img_path")}: the image is {w}x{h} as loaded but its annotation says '
                           f'{int(stated[0])}x{int(stated[1])}{hint}; boxes would not land on the objects')
