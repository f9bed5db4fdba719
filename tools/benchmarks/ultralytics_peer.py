"""Train and test Ultralytics YOLO26n from scratch on a YOLO-layout dataset: the peer a user would pick instead.

    pip install --no-deps --target DIR -r tools/benchmarks/requirements-ultralytics.txt
    PYTHONPATH=DIR YOLO_OFFLINE=1 python tools/benchmarks/ultralytics_peer.py DATA_YAML --task pose \
        --imgsz 192 --epochs 60 --out /tmp/yolo_peer

A measurement-only peer, never a dependency of sscma: it runs in its own folder (Ultralytics installed without
its dependencies beside the stack's torch, see ../shared/ENVIRONMENT.md), offline (no pretrained weights can be
downloaded, so ``pretrained=False``), on the CPU. Prints Ultralytics' own validation and test metrics (its mAP
over OKS for pose, over IoU for boxes), the wall time of training and the number of parameters, as one JSON
line. ``write_yolo_pose`` / ``tools/dataset_split.py`` write the YOLO layouts of sscma's sets.
"""
import argparse
import json
import time

MODELS = {'pose': 'yolo26n-pose.yaml', 'detect': 'yolo26n.yaml'}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('data', help='data.yaml of a YOLO (or YOLO-pose) dataset with train / val / test')
    parser.add_argument('--task', choices=sorted(MODELS), default='detect')
    parser.add_argument('--imgsz', type=int, default=192)
    parser.add_argument('--epochs', type=int, default=60)
    parser.add_argument('--batch', type=int, default=16)
    parser.add_argument('--out', default='/tmp/ultralytics_peer')
    args = parser.parse_args()

    from ultralytics import YOLO
    model = YOLO(MODELS[args.task])
    t0 = time.perf_counter()
    model.train(data=args.data, imgsz=args.imgsz, epochs=args.epochs, batch=args.batch, pretrained=False,
                device='cpu', workers=0, amp=False, plots=False, project=args.out, name='train', exist_ok=True,
                seed=0, deterministic=True, verbose=False)
    train_s = time.perf_counter() - t0
    best = YOLO(f'{args.out}/train/weights/best.pt')
    result = dict(task=args.task, imgsz=args.imgsz, epochs=args.epochs, train_s=round(train_s, 1),
                  params=sum(p.numel() for p in best.model.parameters()))
    for split in ('val', 'test'):
        metrics = best.val(data=args.data, imgsz=args.imgsz, split=split, device='cpu', workers=0, plots=False,
                           project=args.out, name=f'val_{split}', exist_ok=True, verbose=False)
        result[split] = {k: round(float(v), 4) for k, v in metrics.results_dict.items()}
    print(json.dumps(result))


if __name__ == '__main__':
    main()
