"""``export_report.json`` (everything, machine-readable) and ``export_report.md`` (the tables a person reads)."""
import json
import os
import os.path as osp
from typing import Any, Dict, List


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return '-'
    if isinstance(value, float):
        return f'{value:.{digits}g}' if abs(value) < 1e-3 and value != 0 else f'{value:.{digits}f}'
    return str(value)


def _size(n: int) -> str:
    return f'{n / 1024:.1f} KiB' if n < 1024 * 1024 else f'{n / 1024 / 1024:.2f} MiB'


def _scalars(metrics: Dict[str, Any]) -> Dict[str, float]:
    return {k: v for k, v in (metrics or {}).items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def markdown(report: Dict[str, Any]) -> str:
    inp, out = report['input'], report['output']
    norm = inp['normalization_in_graph']
    lines: List[str] = [
        '# Export report', '',
        f'- config: `{report["config"]}`', f'- checkpoint: `{report["checkpoint"]}`',
        f'- model: {report["model_type"]} ({report["task"] or "unknown task"}), {report["params"]:,} parameters, '
        f'{report["macs"]:,} MACs (Conv2d + Linear, batch 1)',
        f'- input `{inp["name"]}`: {"x".join(map(str, inp["shape"]))} {inp["layout"]} {inp["dtype"]}, '
        f'{inp["value_range"]}, channel order {inp["channel_order"]}; the data preprocessor\'s normalisation '
        f'(mean={norm["mean"]}, std={norm["std"]}) is inside the graph',
        f'- output `{out["name"]}`: {"x".join(map(str, out["shape"]))}, {out["meaning"]}',
        f'- post-processing: {report["postprocessing"]}',
        f'- parity: {report.get("parity_images")} validation images against PyTorch; latency: batch 1, one thread',
        '',
        '| file | target | precision | size | max abs diff (rel.) | argmax agreement | latency median (ms) |',
        '| --- | --- | --- | --- | --- | --- | --- |',
    ]
    for e in report['exports']:
        if e['target'] == 'vela':
            v = e['vela']
            lines.append(f'| `{osp.basename(e["file"])}` | vela | int8 | {_size(e["size_bytes"])} '
                         f'| runs on the NPU only | - | {v["inference_ms"]:.3f} (vela estimate, '
                         f'{v["accelerator"]} @ {v["clock_mhz"]:.0f} MHz) |')
            continue
        lat = (e.get('latency') or {}).get('median_ms')
        lines.append(f'| `{osp.basename(e["file"])}` | {e["target"]} | {e["precision"]} | {_size(e["size_bytes"])} '
                     f'| {_fmt(e["parity"]["max_abs_diff"])} ({e["parity"]["max_rel_diff"]:.1e}) '
                     f'| {100 * e["parity"]["argmax_agreement"]:.2f} % '
                     f'| {_fmt(lat, 3)} |')
    if report.get('float_latency'):
        lines.append(f'| (PyTorch eager) | - | float32 | - | 0 | 100.00 % | '
                     f'{_fmt(report["float_latency"]["median_ms"], 3)} |')
    for s in report.get('skipped', []):
        lines.append(f'| - | {s["target"]} | {s["precision"]} | skipped: {s["reason"]} | | | |')
    for f in report.get('failed', []):
        lines.append(f'| - | {f["target"]} | {f["precision"]} | FAILED: {f["error"].splitlines()[0][:300]} | | | |')
    q = [e for e in report['exports'] if e.get('quantization')]
    for e in q:
        info = e['quantization']
        lines += ['', f'int8 (`{osp.basename(e["file"])}`): {info["quantizer"]}, {info["weights"]} weights, '
                  f'{info["activations"]} activations, {info["calibration_images"]} calibration images from the '
                  f'train dataloader, {info["quantize_linear_nodes"]} QuantizeLinear nodes.']
    budget = [e for e in report['exports'] if e['target'] in ('tflite', 'vela') and e['precision'] == 'int8']
    if budget:
        lines += ['', '## Microcontroller / NPU budget', '']
        for e in budget:
            name = osp.basename(e['file'])
            if e['target'] == 'tflite':
                t = e['tflite']
                lines.append(f'- `{name}` (TFLite Micro): flash {_size(e["size_bytes"])} (the whole file), peak '
                             f'activation RAM {_size(t["peak_activation_bytes"])} (largest set of live tensors; '
                             f'a tensor arena needs this plus alignment), input {t["input"]["dtype"]} '
                             f'scale {_fmt(t["input"]["scale"])} zero point {t["input"]["zero_point"]}, ops: '
                             f'{", ".join(t["ops"])}')
            else:
                v = e['vela']
                on_cpu = f' (on the CPU: {", ".join(v["ops_on_cpu"])})' if v['ops_on_cpu'] else ''
                lines.append(f'- `{name}` ({v["accelerator"]}, {v["system_config"]}, {v["memory_mode"]}): '
                             f'{v["inference_ms"]:.3f} ms per inference ({v["inferences_per_second"]:.0f}/s) '
                             f'estimated by vela, SRAM {v["sram_kib"]:.1f} KiB, off-chip flash '
                             f'{v["off_chip_flash_kib"]:.1f} KiB, {v["npu_ops"]} NPU ops and {v["cpu_ops"]} CPU '
                             f'ops{on_cpu}')
    if report.get('float_metrics') is not None:
        base = _scalars(report['float_metrics'])
        keys = list(base)
        lines += ['', f'## Metrics on the {report.get("eval_split", "test")} split (config pipeline + evaluator)', '',
                  '| model | ' + ' | '.join(keys) + ' |', '| --- ' * (len(keys) + 1) + '|',
                  '| PyTorch float32 | ' + ' | '.join(_fmt(base[k]) for k in keys) + ' |']
        for e in report['exports']:
            if e.get('metrics') is None:
                continue
            got = _scalars(e.get('metrics'))
            lines.append(f'| `{osp.basename(e["file"])}` | ' + ' | '.join(
                f'{_fmt(got.get(k))} ({got[k] - base[k]:+.4g})' if k in got else '-' for k in keys) + ' |')
    elif report.get('eval_note'):
        lines += ['', report['eval_note']]
    return '\n'.join(lines) + '\n'


def write_report(report: Dict[str, Any], work_dir: str) -> Dict[str, str]:
    paths = dict(json=osp.join(work_dir, 'export_report.json'), markdown=osp.join(work_dir, 'export_report.md'))
    report = dict(report, report_files=paths)
    for key, text in (('json', json.dumps(report, indent=2)), ('markdown', markdown(report))):
        tmp = paths[key] + '.tmp'
        with open(tmp, 'w', encoding='utf-8') as f:
            f.write(text)
        os.replace(tmp, paths[key])
    return paths
