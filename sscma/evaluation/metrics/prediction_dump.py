"""Every sample's predictions, as the metrics saw them, written to a JSON file."""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

from mmengine.dist import is_main_process
from mmengine.evaluator import BaseMetric

from sscma.registry import METRICS
from sscma.utils.jsonable import to_jsonable

PRED_KEYS = ('points', 'bboxes', 'labels', 'scores', 'keypoints', 'keypoint_scores')
SAMPLE_KEYS = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'pred_label', 'pred_score')


@METRICS.register_module()
class PredictionDump(BaseMetric):
    """Write ``[{img_path, ori_shape, scale_factor, points / bboxes / labels / scores / keypoints ...}]``.

    Coordinates are those the metrics compare: original-image pixels. Returns no metric; add it beside the
    task's metric (``tools/test.py --out predictions.json`` does) to check or reuse the predictions.

    Args:
        out_file (str): The ``.json`` file to write (folders are created).
    """
    default_prefix = 'dump'

    def __init__(self, out_file: str, collect_device: str = 'cpu', prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not str(out_file).endswith('.json'):
            raise ValueError(f'PredictionDump: out_file={out_file!r} must end in .json')
        self.out_file = out_file

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            entry = {k: to_jsonable(sample[k]) for k in SAMPLE_KEYS if k in sample}
            pred = sample.get('pred_instances') or {}
            entry.update({k: to_jsonable(pred[k]) for k in PRED_KEYS if k in pred})
            self.results.append(entry)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        if is_main_process():
            os.makedirs(osp.dirname(osp.abspath(self.out_file)), exist_ok=True)
            tmp = f'{self.out_file}.tmp'
            with open(tmp, 'w', encoding='utf-8') as f:
                json.dump(results, f)
            os.replace(tmp, self.out_file)
        return {}
