"""``sscma.Model``: the tools as a Python API for notebooks, over the same functions as the commands.

.. code-block:: python

    import sscma
    m = sscma.Model('fomo_mobnetv2', data_root='exports/parts')     # a packaged config by name, or a file
    m.train(max_epochs=30)                                          # tools/train.py; m.checkpoint: its best
    m.test()['metrics']                                              # tools/test.py on the test split
    m.export(targets=['tflite', 'tflm'], precisions=['int8'], devices=['xiao_esp32s3'])  # tools/export.py
    m.predict('photos/')                                             # the records of predictions.json
    sscma.Model('work_dirs/fomo_mobnetv2/best_fomo_f1_epoch_27.pth')  # a model file alone (its config inside)

Keyword arguments are ``--cfg-options`` (``max_epochs=30``, ``imgsz=(128, 128)``); those given to the
constructor hold for every call, those given to a call for that call.
"""
import json
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence

from .model_config import resolve_model_config
from .runner import test_model, train_model


class Model:
    """A config (a file or a packaged name, ``sscma configs``) or a model file (checkpoint or exported file).

    Args:
        source (str): Config name or file, or a ``.pth`` checkpoint / exported file (its config travels in it).
        config (str, optional): The config to use with a model file instead of the one it carries (checked to
            describe the same model).
        **cfg_options: Overrides for every call, as ``--cfg-options``.
    """

    def __init__(self, source: str, config: Optional[str] = None, **cfg_options) -> None:
        self.options: Dict[str, Any] = dict(cfg_options)
        self.checkpoint: Optional[str] = None
        self.work_dir: Optional[str] = None
        self.from_model_file = osp.isfile(source) and not source.endswith('.py')
        if self.from_model_file:
            self.checkpoint = source
            self.config, self.options = resolve_model_config(config, source, self.options)
        elif config is not None:
            from sscma.utils import ConfigError
            raise ConfigError(f'config={config!r} goes with a model file; {source!r} is itself a config')
        else:
            self.config = source

    def _options(self, overrides: Dict[str, Any]) -> Dict[str, Any]:
        return {**self.options, **overrides}

    def _model_file(self) -> str:
        if self.checkpoint is None:
            from sscma.utils import ConfigError
            raise ConfigError(f'{self.config}: no trained model yet; call train() first, or make the Model from a '
                              'checkpoint')
        return self.checkpoint

    def train(self, work_dir: Optional[str] = None, resume: Optional[str] = None, load_from: Optional[str] = None,
              amp: bool = False, qat: bool = False, **cfg_options) -> Dict[str, Any]:
        """Train (``tools/train.py``); returns ``results.json`` and sets :attr:`checkpoint` to the best one (the
        last one when the config keeps no best). A Model made from a checkpoint starts from its weights
        (``--load-from``), as does ``qat=True`` after a training."""
        load_from = load_from or (self.checkpoint if (qat or self.from_model_file) and not resume else None)
        self.work_dir = train_model(self.config, work_dir, self._options(cfg_options), resume=resume,
                                    load_from=load_from, amp=amp, qat=qat)
        results_file = osp.join(self.work_dir, 'results.json')
        results = json.load(open(results_file, encoding='utf-8')) if osp.isfile(results_file) else {}
        last = osp.join(self.work_dir, 'last_checkpoint')
        best = (results.get('best') or {}).get('checkpoint')
        if best and osp.isfile(best):
            self.checkpoint = best
        elif osp.isfile(last):
            with open(last, encoding='utf-8') as f:
                self.checkpoint = f.read().strip()
        return results

    def test(self, work_dir: Optional[str] = None, **cfg_options) -> Dict[str, Any]:
        """The test split's metrics (``tools/test.py``): ``metrics``, ``classes``, ``work_dir``."""
        return test_model(self.config, self._model_file(), work_dir, self._options(cfg_options))

    def export(self, targets: Optional[Sequence[str]] = None, precisions: Sequence[str] = ('float32', 'float16', 'int8'),
               devices: Optional[Sequence[str]] = None, work_dir: Optional[str] = None, **kwargs) -> Dict[str, Any]:
        """Export and measure (``tools/export.py``); returns the export report. ``kwargs``: the other arguments
        of :func:`sscma.deploy.export_model` (``calib_batches``, ``input_shape``, ``latency_runs`` ...), the
        rest are ``--cfg-options``."""
        import inspect

        from sscma.deploy import export_model
        named = set(inspect.signature(export_model).parameters) - {'config', 'checkpoint', 'cfg_options'}
        args = {k: v for k, v in kwargs.items() if k in named}
        options = self._options({k: v for k, v in kwargs.items() if k not in named})
        return export_model(self.config, self._model_file(), targets=targets, precisions=precisions, devices=devices,
                            work_dir=work_dir, cfg_options=options, **args)

    def predict(self, source: str, out_dir: Optional[str] = None, score_thr: Optional[float] = None,
                **cfg_options) -> List[Dict[str, Any]]:
        """Run on images, a folder, a glob or a video (``tools/inference.py``): the records of
        ``predictions.json`` (annotated files go to ``out_dir``)."""
        from .inference import run_inference
        result = run_inference(self.config, self._model_file(), source, out_dir=out_dir, score_thr=score_thr,
                               cfg_options=self._options(cfg_options))
        return result['predictions']['predictions']

    def __repr__(self) -> str:
        return f'Model(config={self.config!r}, checkpoint={self.checkpoint!r})'
