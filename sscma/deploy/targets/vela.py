"""vela (``--targets vela``): the int8 TFLite compiled by Arm's ``ethos-u-vela`` for an Ethos-U NPU.

A vela file runs on the NPU only: its report row and budget line are vela's own estimate (inference time at
the NPU clock, SRAM and flash used, ops left on the CPU), and the file gets no parity, latency or test metric.
"""
import csv
import glob
import importlib.util
import os
import os.path as osp
import re
import subprocess
import sys
import tempfile
from typing import Any, Dict, List, Optional

from sscma.deploy.devices import get_device
from sscma.deploy.tflite import INSTALL_HINT, TFLiteBackend
from sscma.deploy.model_meta import append_zip_meta, read_zip_meta
from sscma.registry import EXPORT_TARGETS
from sscma.utils import ExportError

from .base import ExportTarget

VELA_ACCELERATORS = ('ethos-u55-32', 'ethos-u55-64', 'ethos-u55-128', 'ethos-u55-256', 'ethos-u65-256',
                     'ethos-u65-512', 'ethos-u85-128', 'ethos-u85-256', 'ethos-u85-512')


@EXPORT_TARGETS.register_module('vela')
class VelaTarget(ExportTarget):
    """``<stem>_int8_vela.tflite`` for ``--vela-accelerator`` (default: the NPU of the first ``--device`` board
    that has one, else ethos-u55-128)."""
    suffix = '_vela.tflite'
    precisions = ('int8', )
    unsupported_reason = 'vela compiles full-integer int8 models only'
    requires = (('tflite', 'int8'), )
    runs_on_host = False

    def unavailable(self) -> Optional[str]:
        if importlib.util.find_spec('ethosu') is None:
            return f'vela compilation needs ethos-u-vela; install it with {INSTALL_HINT}'
        return None

    def export(self, ctx, precision: str, path: str) -> Dict[str, Any]:
        int8_tflite, requested = ctx.file_of('tflite', 'int8')
        info = compile_vela(int8_tflite, path, vela_accelerator(ctx.options))
        return dict(vela=info, compiled_from=int8_tflite if requested else None)

    def write_meta(self, path: str, meta: Dict[str, Any]) -> None:
        append_zip_meta(path, meta)  # vela writes a new flatbuffer: what the int8 file carried is gone

    def read_meta(self, path: str) -> Optional[Dict[str, Any]]:
        with open(path, 'rb') as f:
            return read_zip_meta(f.read(), path)

    def load(self, path: str, num_threads: Optional[int] = None) -> TFLiteBackend:
        """The LiteRT interpreter, which says that a real vela file runs only on the NPU."""
        return TFLiteBackend(path, num_threads)

    def report_cells(self, entry: Dict[str, Any], columns: List[List[str]]) -> List[str]:
        v = entry['vela']
        return ['runs on the NPU only', *['-'] * len(columns),
                f'{v["inference_ms"]:.3f} (vela estimate, {v["accelerator"]} @ {v["clock_mhz"]:.0f} MHz)']

    def budget_lines(self, entry: Dict[str, Any]) -> List[str]:
        v = entry['vela']
        on_cpu = f' (on the CPU: {", ".join(v["ops_on_cpu"])})' if v['ops_on_cpu'] else ''
        return [f'- `{osp.basename(entry["file"])}` ({v["accelerator"]}, {v["system_config"]}, {v["memory_mode"]}): '
                f'{v["inference_ms"]:.3f} ms per inference ({v["inferences_per_second"]:.0f}/s) estimated by vela, '
                f'SRAM {v["sram_kib"]:.1f} KiB, off-chip flash {v["off_chip_flash_kib"]:.1f} KiB, {v["npu_ops"]} '
                f'NPU ops and {v["cpu_ops"]} CPU ops{on_cpu}']


def vela_accelerator(options: Dict[str, Any]) -> str:
    """The configured ``vela_accelerator``, else the first of ``devices`` with an Ethos-U, else ethos-u55-128."""
    if options.get('vela_accelerator'):
        return options['vela_accelerator']
    boards = [get_device(name) for name in options.get('devices') or () if name != 'list']
    return next((b.vela_accelerator for b in boards if b.vela_accelerator), 'ethos-u55-128')


def compile_vela(tflite_path: str, out_path: str, accelerator: str = 'ethos-u55-128') -> Dict[str, Any]:
    """Compile an int8 TFLite file with vela; returns its performance summary."""
    if accelerator not in VELA_ACCELERATORS:
        raise ExportError(f'--vela-accelerator {accelerator}: choose from {", ".join(VELA_ACCELERATORS)}')
    try:
        import ethosu.vela  # noqa: F401
    except ImportError as e:
        raise ExportError(f'vela compilation needs ethos-u-vela ({e}); install it with {INSTALL_HINT}') from None
    with tempfile.TemporaryDirectory(prefix='sscma_vela_') as tmp:
        proc = subprocess.run([sys.executable, '-m', 'ethosu.vela', '--accelerator-config', accelerator,
                               '--output-dir', tmp, tflite_path], capture_output=True, text=True)
        if proc.returncode != 0:
            raise ExportError(f'vela failed on {tflite_path}: {(proc.stderr or proc.stdout).strip()[-1500:]}')
        compiled = glob.glob(osp.join(tmp, '*_vela.tflite'))
        summaries = glob.glob(osp.join(tmp, '*_summary_*.csv'))
        if not compiled or not summaries:
            raise ExportError(f'vela wrote no compiled model for {tflite_path}: {proc.stdout[-1500:]}')
        os.replace(compiled[0], out_path)
        with open(summaries[0], newline='') as f:
            row = next(csv.DictReader(f))
    npu, cpu = (re.search(rf'{kind} operators = (\d+)', proc.stdout) for kind in ('NPU', 'CPU'))
    unsupported = sorted(set(re.findall(r'Warning \(supported operators\) operator: (\w+)', proc.stdout)))
    return dict(accelerator=row['accelerator_configuration'], system_config=row['system_config'],
                memory_mode=row['memory_mode'], clock_mhz=float(row['core_clock']) / 1e6,
                inference_ms=float(row['inference_time']) * 1000,
                inferences_per_second=float(row['inferences_per_second']),
                sram_kib=float(row['sram_memory_used']), off_chip_flash_kib=float(row['off_chip_flash_memory_used']),
                npu_ops=int(npu.group(1)) if npu else None, cpu_ops=int(cpu.group(1)) if cpu else None,
                ops_on_cpu=unsupported, macs=int(float(row['nn_macs'])))
