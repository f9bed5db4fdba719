"""``sscma predict`` / ``tools/inference.py``: run a model on images, a video or a camera.

MODEL is a ``.pth`` checkpoint or a file exported by ``tools/export.py`` (``.onnx``, TorchScript ``.pt``,
``.tflite`` float or int8); it runs behind the config's test pipeline and post-processing, as in
``sscma test``. Writes annotated images (same names) or an annotated video and ``predictions.json``.
"""
import argparse

from sscma.utils import CfgOptionsAction

from . import model_and_config

DESCRIPTION = 'Run a model on images, a folder, a glob, a video or a camera; annotated output + predictions.json'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('inputs', nargs='+', metavar='[CONFIG] MODEL SOURCE',
                        help='the config the model was made with (leave it out to use the one saved in MODEL), the '
                        'checkpoint (.pth) or exported model (.onnx, TorchScript .pt, .tflite), and the SOURCE: '
                        'image file, folder of images, glob ("data/*.jpg"), video file (.mp4, .avi ...) or camera '
                        'index (0)')
    parser.add_argument('--out', help='output folder (default: work_dirs/inference/<config name>)')
    parser.add_argument('--score-thr', type=float,
                        help='keep detections scoring at least this (FOMO: the head\'s decoding threshold, default '
                        'the config\'s; box detectors: default 0.3)')
    parser.add_argument('--show', action='store_true', help='also show each result in a window (q or Esc stops)')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, default={},
                        help='override settings as for training, e.g. num_classes=2 imgsz="(96,96)"')


def main(args: argparse.Namespace) -> None:
    import os.path as osp

    from sscma.apis.inference import run_inference
    from sscma.utils import ConfigError
    if len(args.inputs) not in (2, 3):
        raise ConfigError(f'expected [CONFIG] MODEL SOURCE, got {len(args.inputs)} arguments: {args.inputs}')
    if len(args.inputs) == 2 and args.inputs[0].endswith('.py'):
        raise ConfigError(f'{args.inputs[0]} is a config: give CONFIG MODEL SOURCE, or MODEL SOURCE (the model file '
                          'carries its config)')
    first, model, source = ([args.inputs[0], None, args.inputs[1]] if len(args.inputs) == 2 else args.inputs)
    config, model, options = model_and_config(argparse.Namespace(config=first, model=model,
                                                                 cfg_options=args.cfg_options))
    result = run_inference(config, model, source, out_dir=args.out, score_thr=args.score_thr, show=args.show,
                           cfg_options=options)
    media = [f for f in result['files'] if not f.endswith('predictions.json')]
    what = 'annotated video' if result['predictions'].get('fps') else 'annotated images'
    print(f'{result["images"]} {"frames" if result["predictions"].get("fps") else "images"} in '
          f'{result["seconds"]:.2f} s: {result["images_per_second"]:.1f} images/s '
          f'({result["task"]}, {result["backend"]}, decoding, pre- and post-processing, drawing and writing included; first batch run once before timing)')
    for line in result.get('summary') or []:
        print(line)
    print(f'{what}: {len(media)} file{"s" if len(media) != 1 else ""} in {osp.abspath(result["out_dir"])}')
    print(f'predictions: {osp.join(osp.abspath(result["out_dir"]), "predictions.json")}')
