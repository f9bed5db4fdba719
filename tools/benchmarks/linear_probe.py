"""What the packaged distilled MobileNetV2 weights transfer: linear-probe accuracy on held-out classification sets.

    python tools/benchmarks/linear_probe.py [--size 64] [--seeds 3]

For each width with packaged weights (``sscma/models/weights``), the frozen backbone's features — global
average pool of stage 2 (stride 8, where FOMO cuts it) and of stage 7 (the last) — are fitted by a logistic
regression, scored by 5-fold stratified cross-validation accuracy (scikit-learn), against the same network
randomly initialised (mean over ``--seeds``) and torchvision's ImageNet MobileNetV2-1.0 (the teacher). Sets
the distillation never saw: scikit-learn's 1,797 handwritten digits (10 classes, 8x8) and scikit-image's
``lfw_subset`` (100 faces vs 100 non-faces, 25x25), both upscaled to ``--size``.
"""
import argparse
import warnings
from typing import Dict, List, Tuple

import cv2
import numpy as np
import torch

from sscma.utils import run_cli

STAGES = (2, 7)


def probe_sets(size: int) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """``name -> (N x 3 x size x size float pixels 0-255, labels)``."""
    from skimage import data
    from sklearn.datasets import load_digits
    digits = load_digits()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        faces = data.lfw_subset()

    def stack(images: np.ndarray, scale: float) -> np.ndarray:
        out = [cv2.resize((im * scale).astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR)
               for im in images]
        return np.repeat(np.stack(out)[:, None], 3, axis=1)

    return {'digits (10 classes)': (stack(digits.images, 255 / 16), digits.target),
            'lfw faces vs non-faces': (stack(faces, 255.0), np.r_[np.ones(100), np.zeros(100)].astype(int))}


@torch.no_grad()
def features(backbone: torch.nn.Module, pixels: np.ndarray, imagenet_norm: bool) -> np.ndarray:
    x = torch.from_numpy(pixels)
    if imagenet_norm:
        x = (x - torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)) / torch.tensor(
            [58.395, 57.12, 57.375]).view(1, 3, 1, 1)
    else:
        x = x / 255.0
    outs = [backbone(x[i:i + 256]) for i in range(0, len(x), 256)]
    return {s: torch.cat([o[k] for o in outs]).mean(dim=(2, 3)).numpy() for k, s in enumerate(STAGES)}


def accuracy(x: np.ndarray, y: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, C=0.5))
    return float(cross_val_score(clf, x, y, cv=StratifiedKFold(5, shuffle=True, random_state=0)).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--size', type=int, default=64)
    parser.add_argument('--seeds', type=int, default=3)
    args = parser.parse_args()
    from sscma.models.backbones import MobileNetV2
    from sscma.models.utils import DistilledMobileNetV2, TorchvisionMobileNetV2
    from sscma.utils.packaged_weights import distilled_weights
    sets = probe_sets(args.size)
    rows: List[Tuple[str, Dict]] = []

    def run(name: str, nets: List[torch.nn.Module], imagenet_norm: bool) -> None:
        scores = {}
        for title, (pixels, labels) in sets.items():
            for stage in STAGES:
                accs = [accuracy(features(n.eval(), pixels, imagenet_norm)[stage], labels) for n in nets]
                scores[(title, stage)] = float(np.mean(accs))
        rows.append((name, scores))

    teacher = MobileNetV2(1.0, out_indices=STAGES)
    TorchvisionMobileNetV2()(teacher)
    run('ImageNet MobileNetV2-1.0 (teacher)', [teacher], True)
    for width in distilled_weights():
        scratch = []
        for seed in range(args.seeds):
            torch.manual_seed(seed)
            scratch.append(MobileNetV2(width, out_indices=STAGES))
        run(f'{width} random init (mean of {args.seeds} seeds)', scratch, False)
        net = MobileNetV2(width, out_indices=STAGES)
        DistilledMobileNetV2()(net)
        run(f'{width} distilled (packaged)', [net], False)
    keys = list(rows[0][1])
    print('| backbone | ' + ' | '.join(f'{t}, stage {s}' for t, s in keys) + ' |')
    print('|---' * (len(keys) + 1) + '|')
    for name, scores in rows:
        print(f'| {name} | ' + ' | '.join(f'{scores[k]:.3f}' for k in keys) + ' |')


if __name__ == '__main__':
    run_cli(main)
