"""A new export target and a new task adapter, registered here only, used by tools/export.py and tools/test.py.

``tools/export.py`` runs in its own process: it imports this file through OpenMMLab's ``custom_imports``
(``--cfg-options custom_imports.imports="['tests.test_deploy.test_plugins']"``), which registers the
components below there too. Nothing in ``sscma`` names them.
"""
import json
import os
import os.path as osp
import subprocess
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmpretrain.models.classifiers import ImageClassifier

from sscma.deploy.targets.base import ExportTarget
from sscma.deploy.targets.onnx import OnnxBackend
from sscma.tasks import Task
from sscma.registry import EXPORT_TARGETS, MODELS, TASKS
from tests.test_deploy.test_export import CLS, REPO, run_inprocess, save_random_model

PLUGIN = 'tests.test_deploy.test_plugins'


@MODELS.register_module(force=True)
class ProbabilityClassifier(ImageClassifier):
    """An mmpretrain classifier whose exported graph is to give probabilities instead of logits."""


@TASKS.register_module('ProbabilityClassifier', force=True)
class ProbabilityAdapter(Task):
    """The graph ends in a softmax; a device reads class probabilities directly."""
    task = 'class probabilities'
    postprocessing = 'outside the graph: argmax (ClsHead on log-probabilities)'
    parity_columns = (('top-1 agreement', 'top1_agreement', 'percent'),
                      ('max probability diff', 'max_probability_diff', 'number'))

    def graph_output(self, model, out, images):
        return super().graph_output(model, out, images).softmax(1)

    def output_meaning(self, model) -> str:
        return 'class probabilities (softmax)'

    def postprocess(self, model, outputs, data_samples):
        return model.head._get_predictions(outputs.clamp_min(1e-12).log(), data_samples)

    def parity(self, model, outputs: Sequence[torch.Tensor], references: Sequence[torch.Tensor],
               input_hw: Tuple[int, int]) -> Dict[str, Any]:
        out, ref = torch.cat(list(outputs)), torch.cat(list(references))
        return dict(top1_agreement=float((out.argmax(1) == ref.argmax(1)).float().mean()),
                    max_probability_diff=float((out - ref).abs().max()))


@EXPORT_TARGETS.register_module('onnx_b1', force=True)
class FixedBatchOnnxTarget(ExportTarget):
    """The float32 ONNX graph with its batch axis fixed to 1, for runtimes without dynamic shapes."""
    suffix = '_b1.onnx'
    precisions = ('float32', )
    unsupported_reason = 'fixed-batch ONNX is float32 only'
    requires = (('onnx', 'float32'), )
    default = False
    runtime = 'onnxruntime CPUExecutionProvider (batch 1)'

    def export(self, ctx, precision: str, path: str) -> Dict[str, Any]:
        import onnx
        source, requested = ctx.file_of('onnx', 'float32')
        model = onnx.load(source)
        for value in (*model.graph.input, *model.graph.output):
            value.type.tensor_type.shape.dim[0].dim_value = 1
        del model.graph.value_info[:]
        onnx.checker.check_model(model)
        onnx.save(model, path)
        return dict(fixed_from=osp.basename(source) if requested else None)

    def load(self, path: str, num_threads: Optional[int] = None) -> OnnxBackend:
        return OnnxBackend(path, num_threads)

    def report_notes(self, entry: Dict[str, Any]) -> List[str]:
        return [f'`{osp.basename(entry["file"])}`: batch fixed to 1 (from {entry["fixed_from"]}).']


def test_plugin_target_and_task_through_tools(folder_root, tmp_path):
    opts = [f'data_root={folder_root}', 'num_classes=3', 'workers=0', 'batch=4', 'widen_factor=0.1',
            'model.type=ProbabilityClassifier']
    ckpt = str(tmp_path / 'cls.pth')
    save_random_model(CLS, opts, ckpt, size=32)
    work = str(tmp_path / 'export')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get('PYTHONPATH')])))
    proc = subprocess.run([sys.executable, 'tools/export.py', CLS, ckpt, '--targets', 'onnx_b1', 'onnx',
                           '--precisions', 'float32', 'float16', '--latency-runs', '2', '--work-dir', work,
                           '--cfg-options', *opts, f'custom_imports.imports=[{PLUGIN}]'],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(osp.join(work, 'export_report.json')) as f:
        report = json.load(f)
    exports = {(e['target'], e['precision']): e for e in report['exports']}
    # the plug-in target comes after the file it is built from, whatever order --targets gave
    assert list(exports) == [('onnx', 'float32'), ('onnx_b1', 'float32'), ('onnx', 'float16')]
    assert [(s['target'], s['precision'], s['reason']) for s in report['skipped']] == [
        ('onnx_b1', 'float16', 'fixed-batch ONNX is float32 only')]
    fixed = exports[('onnx_b1', 'float32')]
    assert fixed['file'] == osp.join(work, 'cls_float32_b1.onnx') and fixed['fixed_from'] == 'cls_float32.onnx'
    assert fixed['input_shape'] == [1, 3, 32, 32] and not fixed['dynamic_batch']
    assert exports[('onnx', 'float32')]['dynamic_batch']
    # the plug-in task: what the graph gives, its parity measures, its post-processing for the test metric
    assert report['task'] == 'class probabilities' and report['model_type'] == 'ProbabilityClassifier'
    assert report['output']['meaning'] == 'class probabilities (softmax)'
    assert fixed['parity']['top1_agreement'] == 1.0 and fixed['parity']['max_probability_diff'] < 1e-5
    assert fixed['latency']['runtime'] == 'onnxruntime CPUExecutionProvider (batch 1)'
    assert fixed['metrics'] == report['float_metrics'] and 'accuracy/top1' in fixed['metrics']
    md = open(osp.join(work, 'export_report.md')).read()
    assert '| top-1 agreement | max probability diff |' in md
    assert '| `cls_float32_b1.onnx` | onnx_b1 | float32 |' in md and '| 100.00 % |' in md
    assert '| - | onnx_b1 | float16 | skipped: fixed-batch ONNX is float32 only |' in md
    assert '`cls_float32_b1.onnx`: batch fixed to 1 (from cls_float32.onnx).' in md
    # probabilities in, without normalisation by the device
    import onnxruntime as ort
    sess = ort.InferenceSession(fixed['file'], providers=['CPUExecutionProvider'])
    probs = sess.run(None, {'images': np.full((1, 3, 32, 32), 128, np.float32)})[0]
    assert probs.shape == (1, 3) and abs(float(probs.sum()) - 1) < 1e-5

    # tools/test.py on the plug-in file (in this process: the registrations above are visible)
    test_work = str(tmp_path / 'test')
    assert run_inprocess('test.py', CLS, fixed['file'], '--work-dir', test_work, '--cfg-options', *opts) in (None, 0)
    with open(osp.join(test_work, 'results.json')) as f:
        tested = json.load(f)['test']
    assert tested == {k: v for k, v in fixed['metrics'].items() if k != 'confusion_matrix/result'}


def test_plugin_target_is_found_for_its_files(tmp_path):
    from sscma.deploy import backend_kind, target_names
    assert backend_kind(str(tmp_path / 'm_float32_b1.onnx')) == 'onnx_b1'  # the longer suffix wins
    assert backend_kind(str(tmp_path / 'm_float32.onnx')) == 'onnx'
    assert 'onnx_b1' in target_names() and 'onnx_b1' not in target_names(defaults_only=True)
