"""``sscma export`` / ``tools/export.py``: export a checkpoint and measure the exported files.

Targets are :data:`sscma.registry.EXPORT_TARGETS` components; a plug-in module that registers more is loaded
with ``--cfg-options custom_imports.imports="['my_package.my_target']"`` (OpenMMLab's ``custom_imports``).
Writes ``<checkpoint stem>_<precision><suffix>`` per target (``.onnx``, ``.pt``, ``.tflite``,
``_vela.tflite`` ...), ``export_report.json`` and ``export_report.md`` to the work dir (default:
``<checkpoint folder>/export``). The exported graphs take
raw pixels (float NCHW, 0..255, RGB for colour models) and normalise them inside; see ``export_report.md`` for
inputs, outputs, parity with PyTorch, latency and the test metric of every file. Evaluate a file again with
``sscma test CONFIG FILE``.
"""
import argparse

from sscma.utils import CfgOptionsAction

from . import add_model_arguments, model_and_config

DESCRIPTION = 'Export a trained model (ONNX / TorchScript / TFLite / vela; fp32 / fp16 / int8)'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser, 'checkpoint (.pth) to export')
    parser.add_argument('--targets', nargs='+',
                        help='registered export targets: onnx, torchscript, tflite, vela (Ethos-U, compiled from the '
                        'int8 TFLite), tflm (TensorFlow Lite Micro C source, exact arena, board verdicts), imx500 (Sony '
                        'MCT int8 ONNX + imxconv-pt, on request only) and plug-ins; default: the first five')
    parser.add_argument('--precisions', nargs='+', default=['float32', 'float16', 'int8'],
                        help='float32, float16, int8 (int8: ppq PTQ for ONNX, TFLite full-integer for tflite/vela)')
    parser.add_argument('--calib-batches', type=int, default=8,
                        help='train-dataloader batches used to calibrate int8 (default 8)')
    parser.add_argument('--input-shape', nargs='+', type=int, metavar='N',
                        help='H W (or C H W) of the exported input; default: the config\'s imgsz. It also '
                        'sets imgsz, so validation/test images are resized to it')
    parser.add_argument('--work-dir', help='output folder (default: <checkpoint folder>/export)')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, default={},
                        help='override settings as for training, e.g. data_root=/data num_classes=2')
    parser.add_argument('--vela-accelerator',
                        help='Ethos-U configuration vela compiles for (default: the NPU of the first --device board '
                        'that has one, else ethos-u55-128)')
    parser.add_argument('--device', nargs='+', metavar='NAME',
                        help='boards to check the int8 model against (the tflm target\'s FITS / DOES NOT FIT verdict; '
                        'exit status 1 when one does not fit); "list" prints the boards. Default: all boards, '
                        'reported without failing')
    parser.add_argument('--no-eval', action='store_true', help='skip evaluating the exported files on the test split')
    parser.add_argument('--latency-runs', type=int, default=50, help='timed runs per file (0: no latency)')


def run_export(args: argparse.Namespace):
    """``(config, options, report)`` of the export the arguments ask for; ``None`` after ``--device list``."""
    from sscma.deploy import export_model
    from sscma.deploy.devices import device_table, get_device
    if args.device == ['list']:
        print(device_table())
        return None
    for name in args.device or []:
        get_device(name)  # an unknown board is refused before anything is exported
    config, checkpoint, options = model_and_config(args)
    report = export_model(config, checkpoint, targets=args.targets, precisions=args.precisions,
                          calib_batches=args.calib_batches, input_shape=args.input_shape, work_dir=args.work_dir,
                          cfg_options=options, run_eval=not args.no_eval, latency_runs=args.latency_runs,
                          vela_accelerator=args.vela_accelerator, devices=args.device)
    return config, options, report


def main(args: argparse.Namespace) -> None:
    from sscma.utils import ExportError
    done = run_export(args)
    if done is None:
        return
    report = done[2]
    with open(report['report_files']['markdown'], encoding='utf-8') as f:
        print(f.read())
    print(f'report: {report["report_files"]["json"]}')
    verdicts = [v for e in report['exports'] for v in (e.get('tflm') or {}).get('devices', [])]
    if args.device and not any(e['target'] == 'tflm' for e in report['exports']):
        if any(f['target'] == 'tflm' for f in report['failed']):
            raise ExportError('no verdict for --device: the tflm target failed (the reason is in '
                              f'{report["report_files"]["markdown"]})')
        raise ExportError('--device needs the tflm target (TensorFlow Lite Micro): add it to --targets')
    misfits = [v['line'] for v in verdicts if not v['fits']]
    if args.device and misfits:
        raise ExportError('does not fit: ' + ' | '.join(misfits))
    if report['failed']:
        failed = ', '.join(f'{f["target"]} {f["precision"]}' for f in report['failed'])
        raise ExportError(f'{failed} could not be exported (the other files are written; reasons in '
                          f'{report["report_files"]["markdown"]})')
