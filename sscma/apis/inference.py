"""Run a trained or exported model on images, a video or a camera: ``tools/inference.py`` / ``sscma predict``.

The model is what ``tools/test.py`` evaluates: a ``.pth`` checkpoint built from the config (checked to fit
exactly), or an exported file (``.onnx``, TorchScript ``.pt``, ``.tflite`` float or int8, a plug-in target's)
run by :class:`~sscma.deploy.BackendModel` with the task adapter's post-processing. Each image goes through
the config's own test pipeline (without its annotation-loading step; video frames enter through
:class:`~sscma.datasets.transforms.LoadImageFromArray`), the test dataloader's collate function, the
model's data preprocessor and ``predict``, so predictions are those ``tools/test.py --out`` writes, in
original-image pixels (docs/fomo.md, "Coordinates").
"""
import os.path as osp
import sys
import time
from functools import partial
from typing import Any, Dict, Iterable, Iterator, List, Optional

import numpy as np
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger

from sscma.tasks.base import as_numpy
from sscma.utils import ConfigError, load_config, register_all_modules

from .annotated_output import AnnotatedOutput, PreviewWindow
from .media_source import MediaSource, VideoFrames, open_source
from .runner import exported_model_config


def _type_name(transform: Any) -> str:
    name = transform.get('type', '') if isinstance(transform, dict) else type(transform).__name__
    return (name if isinstance(name, str) else getattr(name, '__name__', str(name))).rsplit('.', 1)[-1]


def build_inference_model(cfg: Config, model_file: str, config: str) -> torch.nn.Module:
    """The model ``tools/test.py`` would evaluate: ``BackendModel`` for an exported file, else the config's
    model with the checkpoint's weights (which must fit exactly, as ``tools/export.py`` loads it), in eval
    mode."""
    from sscma.deploy.measures import build_model
    from sscma.registry import MODELS
    if not osp.isfile(model_file):
        raise ConfigError(f'MODEL {model_file}: no such file (a .pth checkpoint or a file written by '
                          'tools/export.py: .onnx, .pt, .tflite)')
    exported = exported_model_config(cfg, model_file)
    if exported:
        return MODELS.build(exported).eval()
    return build_model(cfg, model_file, config)


def dataset_meta_for(cfg: Config, model_file: str) -> Dict[str, Any]:
    """Class (and keypoint) names of the model itself: the checkpoint's ``meta.dataset_meta`` or the exported
    file's metadata, never the config's dataset (which may number the classes differently). A model without
    names gets ``class_0 ...`` and one warning."""
    from sscma.deploy import backend_kind, read_export_meta
    from sscma.deploy.model_meta import model_keypoints
    if backend_kind(model_file):
        meta = dict(classes=(read_export_meta(model_file) or {}).get('classes') or [], **model_keypoints(model_file))
    else:
        from sscma.utils.checkpoint import read_checkpoint
        ckpt = read_checkpoint(model_file)
        meta = dict(((ckpt.get('meta') or {}) if isinstance(ckpt, dict) else {}).get('dataset_meta') or {})
    if not meta.get('classes'):
        n = int(cfg.get('num_classes') or 0)
        MMLogger.get_current_instance().warning(
            f'{model_file} carries no class names (a checkpoint from before names were saved, or a file not '
            'exported by sscma): classes are named by their ids' + (f', class_0 ... class_{n - 1}' if n else ''))
        meta['classes'] = [f'class_{i}' for i in range(n)]
    else:
        MMLogger.get_current_instance().info(f'classes of {osp.basename(model_file)} (its own, in output order): '
                                             f'{list(meta["classes"])}')
    if not meta.get('keypoint_names') and cfg.get('keypoint_names'):
        meta['keypoint_names'] = list(cfg.keypoint_names)
    return meta


class Predictor:
    """A model behind its config's test pipeline, collate function, data preprocessor and ``predict``.

    Args:
        cfg (Config): The loaded config (overrides applied).
        model_file (str): ``.pth`` checkpoint or exported file.
        config (str): The config's path, for messages.
        score_thr (float, optional): Keep detections scoring at least this. FOMO: also the head's own
            decoding threshold (cells below it are never decoded); default: the head's ``score_thr``. Box
            detectors: default :data:`sscma.tasks.detection.DEFAULT_BOX_SCORE_THR` (the task's
            :meth:`~sscma.tasks.Task.score_threshold`).
    """

    def __init__(self, cfg: Config, model_file: str, config: str, score_thr: Optional[float] = None) -> None:
        from mmengine.dataset import Compose
        from mmengine.registry import FUNCTIONS

        from sscma.deploy import backend_kind
        from sscma.tasks import task_of
        from sscma.registry import TRANSFORMS
        loader_cfg = cfg.get('test_dataloader') or {}
        steps = list((loader_cfg.get('dataset') or {}).get('pipeline') or [])
        if not steps or not _type_name(steps[0]).startswith('Load'):
            raise ConfigError(f'{config}: test_dataloader.dataset.pipeline must start with an image-loading step '
                              f'(LoadImage), got {[_type_name(s) for s in steps]}')
        load = dict(steps[0])
        if _type_name(load) == 'LoadImage':
            load['on_error'] = 'fail'  # one unreadable file is an error here, not a skipped sample
        self.file_loader = TRANSFORMS.build(load)
        self.array_loader = TRANSFORMS.build(dict(type='LoadImageFromArray', color_type=load.get('color_type', 'color'),
                                                  to_float32=load.get('to_float32', False)))
        self.pipeline = Compose([s for s in steps[1:] if not _type_name(s).endswith('Annotations')])
        collate = dict(loader_cfg.get('collate_fn') or dict(type='pseudo_collate'))
        collate_fn = FUNCTIONS.get(collate.pop('type'))
        self.collate = partial(collate_fn, **collate)
        self.batch_size = max(1, int(loader_cfg.get('batch_size') or 1))

        self.model = build_inference_model(cfg, model_file, config)
        if torch.cuda.is_available():
            self.model = self.model.cuda()
        self.backend = backend_kind(model_file) or 'pytorch'
        float_model = getattr(self.model, 'model', self.model) if self.backend != 'pytorch' else self.model
        self.task_object = task_of(float_model)
        self.task = self.task_object.task or type(float_model).__name__
        self.score_thr = self.task_object.score_threshold(float_model, score_thr)
        self.dataset_meta = dataset_meta_for(cfg, model_file)

    def load_file(self, path: str, index: int) -> Dict[str, Any]:
        """``path`` through the config's loading step (EXIF orientation, grayscale ...)."""
        return self.file_loader(dict(img_path=path, img_id=index, sample_idx=index))

    def load_frame(self, frame: np.ndarray, name: str, index: int) -> Dict[str, Any]:
        """A decoded BGR frame, loaded as :meth:`load_file` would load the same pixels from a file."""
        return self.array_loader(dict(img=frame, img_path=name, img_id=index, sample_idx=index))

    @torch.no_grad()
    def predict(self, loaded: List[Dict[str, Any]]) -> List[Any]:
        """Data samples with predictions (original-image pixels) for a batch of loaded images."""
        packed = [self.pipeline(dict(r)) for r in loaded]
        samples = self.model.test_step(self.collate(packed))
        if self.score_thr is not None:
            for s in samples:
                pred = s.get('pred_instances')
                if pred is not None and 'scores' in pred and len(pred):
                    s.pred_instances = pred[torch.as_tensor(as_numpy(pred.scores) >= self.score_thr)]
        return samples


def _batches(items: Iterable, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _rgb(img: np.ndarray) -> np.ndarray:
    import cv2
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB) if img.ndim == 3 else img


def run_inference(config: str, model_file: str, source: str, out_dir: Optional[str] = None,
                  score_thr: Optional[float] = None, show: bool = False,
                  cfg_options: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Predict on SOURCE; write annotated images (same names) or an annotated video (same fps and size) and
    ``predictions.json`` to ``out_dir`` (default ``work_dirs/inference/<config name>``), all at the end.

    Args:
        config (str): The config the model was trained with.
        model_file (str): ``.pth`` checkpoint or exported file.
        source (str): Image file, folder, glob, video file or camera index (:func:`open_source`).
        out_dir (str, optional): Output folder.
        score_thr (float, optional): See :class:`Predictor`.
        show (bool): Also show each annotated image / frame in a window (where there is a display).
        cfg_options (dict, optional): Config overrides, as for training.

    Returns:
        dict: ``predictions`` (the JSON's content), ``files`` written, ``images``, ``seconds``,
        ``images_per_second``, ``out_dir``, ``task``, ``backend``, ``summary`` (the task's lines to print).
    """
    from mmengine.utils import ProgressBar

    from sscma.registry import VISUALIZERS
    media: MediaSource = open_source(source)  # before anything is built or written
    register_all_modules()
    cfg = load_config(config, cfg_options)
    out_dir = out_dir or osp.join('work_dirs', 'inference', osp.splitext(osp.basename(config))[0])
    predictor = Predictor(cfg, model_file, config, score_thr)
    visualizer = VISUALIZERS.build(dict(type='SampleGridVisualizer', name=f'inference_{id(predictor)}'))
    visualizer.dataset_meta = predictor.dataset_meta
    visualizer.task = predictor.task_object
    frames = VideoFrames(media) if media.kind != 'images' else None
    preview = PreviewWindow(show, title=f'sscma predict {media.name}')
    records: List[Dict[str, Any]] = []
    stopped = False
    with AnnotatedOutput(out_dir) as output:
        start = time.perf_counter()
        if frames is None:
            total = len(media.files)
            items = ((i, p) for i, p in enumerate(media.files))
            batch_size = predictor.batch_size
        else:
            output.open_video(media.output_name(), frames.fps, frames.size)
            total = frames.stated_frames
            items = iter(frames)
            batch_size = predictor.batch_size if media.kind == 'video' else 1
        progress = ProgressBar(total) if total and total >= 10 and sys.stdout.isatty() else None
        try:
            for n, batch in enumerate(_batches(items, batch_size)):
                if frames is None:
                    loaded = [predictor.load_file(path, i) for i, path in batch]
                else:
                    loaded = [predictor.load_frame(frame, media.name, i) for i, frame in batch]
                if n == 0:  # warm-up (oneDNN / runtime set-up on the first call), not timed
                    warm = time.perf_counter()
                    predictor.predict(loaded)
                    start += time.perf_counter() - warm
                for (i, item), res, sample in zip(batch, loaded, predictor.predict(loaded)):
                    h, w = res['ori_shape'][:2]
                    where = dict(file=item) if frames is None else dict(file=media.name, frame=i)
                    records.append(dict(**where, width=int(w), height=int(h),
                                        **predictor.task_object.record(sample, predictor.dataset_meta)))
                    drawn = visualizer.draw_prediction(_rgb(res['img']), sample)
                    if frames is None:
                        output.write_image(media.output_name(item), drawn)
                    else:
                        output.write_frame(drawn)
                    if progress:
                        progress.update()
                    if not preview.show(drawn, 0 if frames is None else 1):
                        stopped = True
                        break
                if stopped:
                    break
        except KeyboardInterrupt:
            if media.kind != 'camera':
                raise
        finally:
            preview.close()
        if progress:
            print()
        seconds = time.perf_counter() - start
        classes = list(predictor.dataset_meta.get('classes') or [])
        document = dict(config=config, model=model_file, backend=predictor.backend, task=predictor.task,
                        source=media.name, classes=classes, score_thr=predictor.score_thr, images=len(records),
                        seconds=round(seconds, 3), images_per_second=round(len(records) / max(seconds, 1e-9), 2),
                        predictions=records)
        if frames is not None:
            document['fps'] = frames.fps
        files = output.commit(document)
    return dict(predictions=document, files=files, images=len(records), seconds=seconds,
                images_per_second=len(records) / max(seconds, 1e-9), out_dir=out_dir, task=predictor.task,
                backend=predictor.backend, summary=predictor.task_object.summary(records))
