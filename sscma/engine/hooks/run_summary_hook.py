"""Machine-readable results, PNG figures and a closing summary for every run."""
import json
import os
import os.path as osp
from numbers import Number
from typing import Any, Dict, Optional

import numpy as np
from mmengine.dist import master_only
from mmengine.hooks import Hook

from sscma.registry import HOOKS
from sscma.utils.jsonable import to_jsonable
from sscma.visualization import plot_confusion_matrix, plot_training_curves

CONFUSION_KEY = 'confusion_matrix/result'


@HOOKS.register_module()
class RunSummaryHook(Hook):
    """Write ``results.json`` after each evaluation, PNG figures, and print a summary at the end.

    ``results.json`` (in the work dir) holds the latest and best validation metrics, the test metrics
    when ``tools/test.py`` runs, the class names and the checkpoint paths. A confusion matrix found among
    the metrics is drawn to ``confusion_matrix_<phase>.png``; the loss / lr / metric curves are drawn to
    ``training_curves.png`` after training.
    """
    priority = 'VERY_LOW'  # after CheckpointHook has updated the best checkpoint

    def __init__(self, results_file: str = 'results.json') -> None:
        self.results_file = results_file
        self.results: Dict[str, Any] = {}

    def _path(self, runner, name: str) -> str:
        return osp.join(runner.work_dir, name)

    def before_train(self, runner) -> None:
        """The validation set must number its classes as the training set does (its metrics, and the best
        checkpoint chosen by them, would otherwise compare other classes): the same names in another order
        stop the run; other names are a warning."""
        from sscma.utils import ConfigError
        train = list((getattr(runner.train_dataloader.dataset, 'metainfo', None) or {}).get('classes') or [])
        val_loop = getattr(runner, '_val_loop', None)
        dataset = getattr(getattr(val_loop, 'dataloader', None), 'dataset', None)
        val = list((getattr(dataset, 'metainfo', None) or {}).get('classes') or [])
        if not train or not val or train == val:
            return
        if set(train) == set(val):
            raise ConfigError(f'the validation data numbers its classes {val}, the training data {train}: give both '
                              'the same order (the datasets\' classes=[...] argument, or one export for all splits)')
        runner.logger.warning(f'validation classes {val} differ from the training classes {train}: per-class '
                              'validation metrics compare different classes')

    def before_run(self, runner) -> None:
        path = self._path(runner, self.results_file)
        if osp.isfile(path):  # keep what earlier runs (training, then testing) wrote
            try:
                with open(path, encoding='utf-8') as f:
                    self.results = json.load(f)
            except (OSError, json.JSONDecodeError):
                self.results = {}
        self.results['config'] = runner.cfg.filename

    @staticmethod
    def _class_names(runner, phase: str):
        loader = getattr(runner, f'{phase}_dataloader', None)
        dataset = getattr(loader, 'dataset', None)
        meta = getattr(dataset, 'metainfo', None) or {}
        return list(meta.get('classes', []))

    @master_only
    def _record(self, runner, phase: str, metrics: Optional[Dict[str, Any]]) -> None:
        if not metrics:
            return
        metrics = dict(metrics)
        classes = self._class_names(runner, phase)
        key = next((k for k in metrics if k == CONFUSION_KEY or k.endswith('/confusion_matrix')), None)
        if key is not None:
            matrix = to_jsonable(metrics.pop(key))
            names = classes if len(classes) == len(matrix) else [str(i) for i in range(len(matrix))]
            png = plot_confusion_matrix(np.array(matrix), names, self._path(runner, f'confusion_matrix_{phase}.png'),
                                        title=f'{phase} confusion matrix')
            self.results[f'{phase}_confusion_matrix'] = matrix
            self.results[f'{phase}_confusion_matrix_png'] = png
        entry = to_jsonable(metrics)
        if phase == 'val':
            entry['epoch'] = runner.epoch
            self.results['val'] = entry
            best = self._best_info(runner)
            if best:
                self.results['best'] = best
        else:
            self.results[phase] = entry
            ckpt = getattr(runner, '_load_from', None) or runner.cfg.get('load_from')
            if ckpt:
                self.results[f'{phase}_checkpoint'] = ckpt
        if classes:
            self.results['classes'] = classes
        self._write(runner)

    def _best_info(self, runner) -> Dict[str, Any]:
        info = {}
        for key, value in runner.message_hub.runtime_info.items():
            if key.startswith('best_score'):
                info['score'] = to_jsonable(value)
            elif key == 'best_ckpt':
                info['checkpoint'] = value
        for hook in runner.hooks:
            if hasattr(hook, 'key_indicators') and getattr(hook, 'save_best', None):
                info['metric'] = hook.key_indicators[0] if hook.key_indicators else None
        return info

    def _write(self, runner) -> None:
        path = self._path(runner, self.results_file)
        with open(path + '.tmp', 'w', encoding='utf-8') as f:
            json.dump(self.results, f, indent=2)
        os.replace(path + '.tmp', path)

    def after_val_epoch(self, runner, metrics: Optional[Dict[str, float]] = None) -> None:
        self._record(runner, 'val', metrics)

    def after_test_epoch(self, runner, metrics: Optional[Dict[str, float]] = None) -> None:
        self._record(runner, 'test', metrics)

    @master_only
    def after_train(self, runner) -> None:
        png = plot_training_curves(osp.join(runner.log_dir, 'vis_data', 'scalars.json'),
                                   self._path(runner, 'training_curves.png'))
        if png:
            self.results['training_curves_png'] = png
        last = osp.join(runner.work_dir, f'epoch_{runner.epoch}.pth')
        if osp.isfile(last):
            self.results['last_checkpoint'] = last
        self._write(runner)

    @master_only
    def after_run(self, runner) -> None:
        rows = [('work dir', runner.work_dir)]
        best = self.results.get('best', {})
        if best.get('metric') and best.get('score') is not None:
            rows.append((f'best {best["metric"]}', _fmt(best['score'])))
        if best.get('checkpoint'):
            rows.append(('best checkpoint', best['checkpoint']))
        if self.results.get('last_checkpoint'):
            rows.append(('last checkpoint', self.results['last_checkpoint']))
        for phase in ('val', 'test'):
            for key, value in (self.results.get(phase) or {}).items():
                if isinstance(value, Number) and key != 'epoch':
                    rows.append((f'{phase} {key}', _fmt(value)))
        rows.append(('results', self._path(runner, self.results_file)))
        for key in ('training_curves_png', 'val_confusion_matrix_png', 'test_confusion_matrix_png'):
            if self.results.get(key):
                rows.append((key.replace('_png', ' (png)').replace('_', ' '), self.results[key]))
        width = max(len(k) for k, _ in rows)
        lines = ['', '=' * 20 + ' sscma summary ' + '=' * 20] + [f'{k:<{width}}  {v}' for k, v in rows]
        runner.logger.info('\n'.join(lines))


def _fmt(value: Any) -> str:
    return f'{value:.4f}' if isinstance(value, float) else str(value)
