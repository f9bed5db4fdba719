"""A task added in this file only, with no edit under ``sscma/``: counting the objects of an image.

Its model (a MobileNetV2 and a regression head), metric and task object are registered here; the dataset is
the detection one (the target is the number of boxes left after the batch augmentations). It trains with
``tools/train.py`` (prediction PNGs included), is tested with ``tools/test.py``, exported to ONNX and int8
TFLite with the exported files evaluated, and run by ``tools/inference.py`` with drawn output and a
``predictions.json`` record: what ``docs/contributing.md`` ("A new task") walks through.
"""
import json
import os
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pytest
import torch
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from torch import nn

from sscma.registry import METRICS, MODELS, TASKS
from sscma.tasks import Task
from tests.test_deploy.test_export import REPO, run_inprocess

MODULE = 'tests.test_apis.test_new_task'


@MODELS.register_module()
class ObjectCounter(BaseModel):
    """How many objects an image holds: backbone features, global average pooling, one linear unit."""

    def __init__(self, backbone: dict, data_preprocessor: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor)
        self.backbone = MODELS.build(backbone)
        self.head = nn.Linear(self.backbone.feature_info[-1].channels, 1)

    def forward(self, inputs: torch.Tensor, data_samples: Optional[List] = None, mode: str = 'tensor'):
        count = self.head(self.backbone(inputs)[-1].mean((2, 3)))  # (B, 1)
        if mode == 'loss':  # the boxes the augmentations left in the image are the target
            target = torch.tensor([[float(len(s.gt_instances))] for s in data_samples], device=count.device)
            return dict(loss_count=nn.functional.smooth_l1_loss(count, target))
        if mode == 'predict':
            return self.add_counts(count, data_samples)
        return count

    @staticmethod
    def add_counts(count: torch.Tensor, data_samples: List) -> List:
        for sample, c in zip(data_samples, count[:, 0]):
            sample.set_field(float(c), 'pred_count')
        return data_samples


@METRICS.register_module()
class CountMetric(BaseMetric):
    """Mean absolute error of the count, and how often its rounded value is exact."""
    default_prefix = 'count'

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for s in data_samples:
            self.results.append((s['pred_count'], len(s['gt_instances']['labels'])))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        pred, true = np.array(results, dtype=np.float64).T
        return dict(mae=float(np.abs(pred - true).mean()), exact=float((np.round(pred) == true).mean()))


@TASKS.register_module('ObjectCounter')
class CountTask(Task):
    """The graph gives ``(B, 1)`` counts; nothing is done outside it."""
    task = 'count'
    postprocessing = 'none: the graph output is the count'
    parity_columns = (('count difference max', 'count_diff_max', 'number'), )

    def output_meaning(self, model: nn.Module) -> str:
        return 'the number of objects, (B, 1)'

    def postprocess(self, model: nn.Module, outputs: torch.Tensor, data_samples: List) -> List:
        return model.add_counts(outputs.reshape(-1, 1), data_samples)

    def parity(self, model, outputs, references, input_hw: Tuple[int, int]) -> Dict[str, Any]:
        diff = torch.cat([(o - r).abs().flatten() for o, r in zip(outputs, references)])
        return dict(count_diff_max=float(diff.max()))

    def record(self, sample: Any, meta: Dict[str, Any]) -> Dict[str, Any]:
        return dict(count=round(float(sample.pred_count), 3))

    def draw(self, image: np.ndarray, sample: Any, meta: Dict[str, Any], size: int, score_thr: float = 0.0,
             truth: bool = True) -> Optional[np.ndarray]:
        from sscma.visualization import draw_caption
        text = f'count {sample.pred_count:.1f}'
        if truth and 'gt_instances' in sample:
            text += f' (gt {len(sample.gt_instances)})'
        return draw_caption(image, text, size=size)


CONFIG = f'''
_base_ = ['{REPO}/configs/fomo/fomo_mobnetv2.py']
custom_imports = dict(imports=['{MODULE}'], allow_failed_imports=False)
model = dict(_delete_=True, type='ObjectCounter',
             data_preprocessor=dict(type='DetDataPreprocessor', mean=[0.0] * 3, std=[255.0] * 3, bgr_to_rgb=True,
                                    augments={{{{_base_.train_augments}}}}),
             backbone=dict(type='MobileNetV2', widen_factor=0.1, out_indices=(2, )))
val_evaluator = dict(type='CountMetric')
test_evaluator = val_evaluator
default_hooks = dict(checkpoint=dict(save_best='count/mae', rule='less'))
'''


@pytest.fixture(scope='module')
def count_run(roboflow_root, tmp_path_factory):
    work = tmp_path_factory.mktemp('count')
    config = str(work / 'count_objects.py')
    with open(config, 'w') as f:
        f.write(CONFIG)
    opts = ['--cfg-options', f'data_root={roboflow_root}', 'imgsz=(64,64)', 'batch=4', 'workers=0']
    assert run_inprocess('train.py', config, '--work-dir', str(work), *opts, 'max_epochs=2') in (None, 0)
    return config, str(work), opts


def test_trains_with_its_metric_and_prediction_pngs(count_run):
    _, work, _ = count_run
    results = json.load(open(osp.join(work, 'results.json')))
    assert {'count/mae', 'count/exact'} <= set(results['val'])
    assert osp.getsize(osp.join(work, 'vis', 'val_epoch_002.png')) > 1000


def test_test_tool_export_and_inference(count_run, roboflow_root, tmp_path):
    from sscma.deploy import read_export_meta
    config, work, opts = count_run
    ckpt = osp.join(work, 'epoch_2.pth')
    assert run_inprocess('test.py', config, ckpt, '--work-dir', str(tmp_path / 'test'), *opts) in (None, 0)
    tested = json.load(open(tmp_path / 'test' / 'results.json'))['test']
    assert tested['count/mae'] >= 0 and osp.isfile(tmp_path / 'test' / 'vis' / 'test.png')

    export = str(tmp_path / 'export')
    assert run_inprocess('export.py', config, ckpt, '--targets', 'onnx', 'tflite', '--precisions', 'float32', 'int8',
                         '--calib-batches', '2', '--latency-runs', '1', '--work-dir', export, *opts) in (None, 0)
    report = json.load(open(osp.join(export, 'export_report.json')))
    assert report['task'] == 'count' and not report['failed']
    entries = {(e['target'], e['precision']): e for e in report['exports']}
    assert entries[('onnx', 'float32')]['metrics']['count/mae'] == pytest.approx(tested['count/mae'], abs=1e-4)
    int8 = entries[('tflite', 'int8')]
    assert abs(int8['metrics']['count/mae'] - tested['count/mae']) < 0.5 and 'count_diff_max' in int8['parity']
    assert read_export_meta(int8['file'])['task'] == 'count'

    out = str(tmp_path / 'inference')
    images = osp.join(roboflow_root, 'test')
    assert run_inprocess('inference.py', config, int8['file'], images, '--out', out, *opts) in (None, 0)
    doc = json.load(open(osp.join(out, 'predictions.json')))
    assert doc['task'] == 'count' and len(doc['predictions']) == 4
    assert all(isinstance(p['count'], float) for p in doc['predictions'])
    drawn = [f for f in os.listdir(out) if f != 'predictions.json']
    assert len(drawn) == 4 and all(osp.getsize(osp.join(out, f)) > 500 for f in drawn)  # the caption, drawn


def test_batch_augmentations_leave_the_count_right():
    """The count is the number of boxes left after the augmentations: a shift that pushes a box out of the
    image takes it out of the target too."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    from sscma.models.data_preprocessors.geometry import move_geometry
    s = DetDataSample()
    s.gt_instances = InstanceData(bboxes=torch.tensor([[2., 2, 10, 10], [40., 40, 60, 60]]), labels=torch.tensor([0, 1]))
    shift = np.array([[[1.0, 0.0, -30.0], [0.0, 1.0, 0.0]]])  # 30 px to the left
    move_geometry([s], [0], shift, 64, 64, (0.3, 1.0))
    assert len(s.gt_instances) == 1 and s.gt_instances.labels.tolist() == [1]
