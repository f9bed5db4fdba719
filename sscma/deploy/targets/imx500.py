"""Sony IMX500 (``--targets imx500``): MCT post-training quantisation, its ONNX, and Sony's converter.

Sony's Model Compression Toolkit (``model-compression-toolkit``) quantises the export graph (raw pixels in,
normalisation inside) for the target platform capabilities of the IMX500 from ``edge-mdt-tpc``: 8-bit
symmetric per-channel weights and 8-bit power-of-two activation thresholds, calibrated on the same training
images as the other int8 targets. ``mct.exporter.pytorch_export_model`` writes ``<stem>_int8_imx500.onnx``
in MCTQ format (the quantisers are custom ops of the ``mct_quantizers`` domain), which is what
``imxconv-pt`` takes. That file is run here by onnxruntime with those ops registered (``mct_quantizers``'
Python kernels through ``onnxruntime-extensions``), so parity, latency and the test metric in the report are
those of the quantised file itself.

Sony's converter (``imx500-converter[pt]``) cannot be installed beside the stack (its ``uni-pytorch`` pins
``onnx~=1.17.0``, ``onnxruntime~=1.21.0``, ``mct-quantizers~=1.6.0`` and ``protobuf==4.25.5``; see
docs/export.md), so it lives in a virtual environment of its own: set ``SSCMA_IMXCONV`` to its
``imxconv-pt`` (or put it on ``PATH``) and the target also writes ``<stem>_int8_imx500/packerOut.zip`` and
the converter's memory report. ``imx500-package`` turns ``packerOut.zip`` into ``network.rpk`` on the
Raspberry Pi itself.
"""
import contextlib
import copy
import functools
import glob
import importlib.util
import io
import json
import os
import os.path as osp
import shutil
import subprocess
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from sscma.deploy.model_meta import LABELS_FILE, read_onnx_meta, write_onnx_meta
from sscma.registry import EXPORT_TARGETS
from sscma.utils import ExportError
from sscma.utils.optional_imports import load_triton_first

from .base import ExportTarget
from .onnx import OnnxBackend, _quiet

MCT_PACKAGES = (('model_compression_toolkit', 'model-compression-toolkit'), ('edgemdt_tpc', 'edge-mdt-tpc'),
                ('onnxruntime_extensions', 'onnxruntime-extensions'))
INSTALL_HINT = ('pip install -c requirements/constraints.txt -r requirements/export.txt '
                '(model-compression-toolkit==2.6.1 edge-mdt-tpc==1.3.0 onnxruntime-extensions==0.15.2)')
TPC_VERSION = '1.0'  # the IMX500 TPC every imx500-converter release since 3.14 takes (edge-mdt-tpc's table)
CONVERTER_ENV = 'SSCMA_IMXCONV'
CONVERTER_INSTALL = ('python3.11 -m venv ~/.cache/sscma/imxconv && ~/.cache/sscma/imxconv/bin/pip install '
                     '"imx500-converter[pt]==3.19.2" (its own venv: it pins onnx~=1.17.0, onnxruntime~=1.21.0, '
                     'mct-quantizers~=1.6.0, protobuf==4.25.5), a Java 17 runtime (apt install '
                     'openjdk-17-jre-headless), then export SSCMA_IMXCONV=~/.cache/sscma/imxconv/bin/imxconv-pt')
PI_STEP = ('on the Raspberry Pi: sudo apt install imx500-tools; imx500-package -i packerOut.zip -o DIR '
           '(writes DIR/network.rpk)')


@EXPORT_TARGETS.register_module('imx500')
class IMX500Target(ExportTarget):
    """``<stem>_int8_imx500.onnx`` (MCT, MCTQ format) and, with Sony's converter, ``<stem>_int8_imx500/``."""
    suffix = '_imx500.onnx'
    precisions = ('int8', )
    unsupported_reason = 'the IMX500 runs MCT-quantised 8-bit models only'
    default = False  # one sensor; `--targets imx500` asks for it
    runtime = 'onnxruntime + mct_quantizers custom ops (onnxruntime-extensions)'

    def unavailable(self) -> Optional[str]:
        missing = [pkg for module, pkg in MCT_PACKAGES if importlib.util.find_spec(module) is None]
        if missing:
            return f'IMX500 export needs {", ".join(missing)}; install it with {INSTALL_HINT}'
        return None

    def export(self, ctx, precision: str, path: str) -> Dict[str, Any]:
        info = quantize_mct(ctx.wrapper, ctx.calibration(), path)
        info['converter'] = convert_imx500(path, path[:-len('.onnx')])
        return dict(imx500=info)

    def load(self, path: str, num_threads: Optional[int] = None) -> OnnxBackend:
        return mct_onnx_backend(path, num_threads)

    def write_meta(self, path: str, meta: Dict[str, Any]) -> None:
        """In the MCT ONNX, and as ``labels.txt`` beside Sony's ``packerOut.zip`` (what the Raspberry Pi
        application reads for names) when the converter ran."""
        write_onnx_meta(path, meta)
        package = path[:-len('.onnx')]
        if osp.isdir(package):
            with open(osp.join(package, LABELS_FILE), 'w', encoding='utf-8') as f:
                f.write(''.join(f'{name}\n' for name in meta.get('classes') or []))

    def read_meta(self, path: str) -> Optional[Dict[str, Any]]:
        return read_onnx_meta(path)

    def report_notes(self, entry: Dict[str, Any]) -> List[str]:
        q = entry['imx500']
        return [f'int8 IMX500 (`{osp.basename(entry["file"])}`): {q["quantizer"]}; {q["weights"]} weights, '
                f'{q["activations"]} activations, {q["calibration_images"]} calibration images from the train '
                f'dataloader; ONNX with {q["weight_quantizer_nodes"]} weight and {q["activation_quantizer_nodes"]} '
                f'activation quantiser ops of the `mct_quantizers` domain, run here by {self.runtime}.']

    def budget_lines(self, entry: Dict[str, Any]) -> List[str]:
        conv = entry['imx500']['converter']
        name = f'`{osp.basename(entry["file"])}`'
        if not conv.get('ran'):
            return [f'- {name} (IMX500): not converted here: {conv["reason"]}']
        if conv.get('error'):
            return [f'- {name} (IMX500): imxconv-pt FAILED: {conv["error"]}']
        mem = conv.get('memory') or {}
        fits = {True: 'fits in the chip', False: '**does not fit in the chip**'}.get(mem.get('Fit In Chip'), '')
        return [f'- `{osp.relpath(conv["packer"], osp.dirname(entry["file"]))}` ({conv["version"]}): IMX500 memory '
                f'{mem.get("Memory Usage", "?")} of {mem.get("Total Memory Available On Chip", "?")} '
                f'({mem.get("Memory Utilization", "?")}; runtime {mem.get("Runtime Memory Physical Size", "?")}, '
                f'model {mem.get("Model Memory Physical Size", "?")}), {fits}; {PI_STEP}']


# ---------------------------------------------------------------------------------------------- MCT
def import_mct():
    """``(model_compression_toolkit, edgemdt_tpc)``, quietly; an :class:`ExportError` naming the packages
    when they are missing."""
    load_triton_first()  # MCT imports TensorFlow when it is installed
    try:
        with _quiet(), contextlib.redirect_stderr(io.StringIO()):
            import edgemdt_tpc
            import model_compression_toolkit as mct
    except ImportError as e:
        raise ExportError(f'IMX500 export needs model-compression-toolkit and edge-mdt-tpc ({e}); '
                          f'install them with {INSTALL_HINT}') from None
    return mct, edgemdt_tpc


def mct_graph(wrapper: nn.Module, example: torch.Tensor) -> torch.fx.GraphModule:
    """The export graph as MCT reads it: traced by torch.fx, without its dtype casts.

    Layers whose padding follows the input size (TFLite-style ``'same'`` convs, ``with_fixed_padding``) are
    replaced, in a copy, by their fixed-padding layers for the sizes they see on ``example`` (one image of the
    export size). MCT's reader rejects ``Tensor.to`` and reads ``Tensor.float`` as the dtype ``torch.float``;
    on the float32 model both are no-ops, so they are removed from the traced graph.
    """
    sized = [name for name, m in wrapper.named_modules() if hasattr(m, 'with_fixed_padding')]
    if sized:
        wrapper = copy.deepcopy(wrapper).eval()
        sizes: Dict[str, Tuple[int, int]] = {}

        def record(name):  # a pre-hook that returns a value would replace the layer's input
            def hook(module, args) -> None:
                sizes.setdefault(name, tuple(args[0].shape[-2:]))
            return hook

        hooks = [wrapper.get_submodule(name).register_forward_pre_hook(record(name)) for name in sized]
        with torch.no_grad():
            wrapper(example)
        for hook in hooks:
            hook.remove()
        for name in sized:
            parent, _, child = name.rpartition('.')
            setattr(wrapper.get_submodule(parent), child, wrapper.get_submodule(name).with_fixed_padding(sizes[name]))
    try:
        graph = torch.fx.symbolic_trace(wrapper)
    except Exception as e:  # torch.fx raises TraceError, TypeError, ... on data-dependent Python
        raise ExportError(f'the IMX500 target quantises with MCT, which needs a graph torch.fx can trace: '
                          f'{type(e).__name__}: {str(e).splitlines()[0]}') from None
    for node in list(graph.graph.nodes):
        if node.op == 'call_method' and node.target in ('to', 'float'):
            node.replace_all_uses_with(node.args[0])
            graph.graph.erase_node(node)
    graph.graph.lint()
    graph.recompile()
    return graph.eval()


@contextlib.contextmanager
def legacy_onnx_exporter():
    """MCT's exporter calls ``torch.onnx.export`` with ``dynamic_axes`` and custom-op symbolics, which only the
    TorchScript exporter handles; torch >= 2.9 defaults to the dynamo one."""
    export = torch.onnx.export
    torch.onnx.export = functools.partial(export, dynamo=False)
    try:
        yield
    finally:
        torch.onnx.export = export


def quantize_mct(wrapper: nn.Module, calib: Sequence[torch.Tensor], path: str,
                 tpc_version: str = TPC_VERSION) -> Dict[str, Any]:
    """MCT post-training quantisation of ``wrapper`` for the IMX500 on ``calib`` (raw-pixel NCHW batches),
    exported to ``path`` as ONNX with MCTQ quantisers. Returns what the report keeps."""
    import onnx
    mct, edgemdt_tpc = import_mct()
    from model_compression_toolkit.core.pytorch.pytorch_device_config import set_working_device
    from model_compression_toolkit.exporter import PytorchExportSerializationFormat, QuantizationFormat
    set_working_device('cpu')  # MCT would move the model (shared with the other targets) to a GPU
    calib = [c.float().cpu() for c in calib]
    graph = mct_graph(wrapper, calib[0][:1])

    def representative():
        for batch in calib:
            yield [batch]

    log = io.StringIO()
    try:
        with _quiet(), contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            tpc = edgemdt_tpc.get_target_platform_capabilities(tpc_version=tpc_version, device_type='imx500')
            quantized, _ = mct.ptq.pytorch_post_training_quantization(
                in_module=graph, representative_data_gen=representative, target_platform_capabilities=tpc)
            with legacy_onnx_exporter():
                mct.exporter.pytorch_export_model(
                    quantized, save_model_path=path, repr_dataset=representative,
                    serialization_format=PytorchExportSerializationFormat.ONNX,
                    quantization_format=QuantizationFormat.MCTQ)
    except ExportError:
        raise
    except Exception as e:  # MCT raises plain Exception from Logger.critical
        raise ExportError(f'MCT quantisation for the IMX500 failed: {type(e).__name__}: '
                          f'{str(e).strip().splitlines()[0] if str(e).strip() else ""}\n{log.getvalue()[-1500:]}') \
            from None
    finally:
        wrapper.cpu().eval()
    ops = [n.op_type for n in onnx.load(path).graph.node if n.domain == 'mct_quantizers']
    version = getattr(edgemdt_tpc, '__version__', None) or _dist_version('edge-mdt-tpc')
    return dict(quantizer=f'model-compression-toolkit {mct.__version__} PTQ with the IMX500 TPC v{tpc_version} '
                f'(edge-mdt-tpc {version}), MCTQ ONNX', tpc_version=tpc_version,
                calibration_images=int(sum(c.shape[0] for c in calib)), weights='8-bit symmetric per-channel',
                activations='8-bit power-of-two threshold',
                weight_quantizer_nodes=sum(op.startswith('Weights') for op in ops),
                activation_quantizer_nodes=sum(op.startswith('Activation') for op in ops),
                quantizer_ops=sorted(set(ops)))


def _dist_version(name: str) -> Optional[str]:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def mct_onnx_backend(path: str, num_threads: Optional[int] = None) -> OnnxBackend:
    """onnxruntime on an MCTQ ONNX: ``mct_quantizers`` registers its quantisers as Python custom ops of
    onnxruntime-extensions, whose library the session loads."""
    missing = [pkg for module, pkg in (('mct_quantizers', 'mct-quantizers'), *MCT_PACKAGES[2:])
               if importlib.util.find_spec(module) is None]
    if missing:
        raise ExportError(f'running {path} needs {", ".join(missing)} (its quantisers are custom ops); '
                          f'install them with {INSTALL_HINT}')
    load_triton_first()  # mct_quantizers imports TensorFlow when it is installed
    with _quiet(), contextlib.redirect_stderr(io.StringIO()):
        import mct_quantizers  # noqa: F401  (its quantiser kernels register with onnxruntime-extensions on import)
    from onnxruntime_extensions import get_library_path
    return OnnxBackend(path, num_threads, custom_ops_library=get_library_path())


# ---------------------------------------------------------------------------------------- converter
def find_converter() -> Optional[str]:
    """``imxconv-pt`` from ``$SSCMA_IMXCONV`` or ``PATH``, or ``None``."""
    given = os.environ.get(CONVERTER_ENV)
    if given:
        return given if osp.isfile(given) and os.access(given, os.X_OK) else None
    return shutil.which('imxconv-pt')


def convert_imx500(onnx_path: str, out_dir: str, timeout: int = 1800) -> Dict[str, Any]:
    """Run ``imxconv-pt`` on the MCTQ ONNX into ``out_dir`` (``packerOut.zip``, memory report, ``dnnParams.xml``).

    Returns ``ran=False`` with the reason and the command to run elsewhere when the converter or Java is missing,
    ``error`` when it fails (the quantised ONNX and its metric stay valid).
    """
    command = f'imxconv-pt -i {osp.basename(onnx_path)} -o {osp.basename(out_dir)} --no-input-persistency'
    exe = find_converter()
    if exe is None:
        where = f'${CONVERTER_ENV}={os.environ[CONVERTER_ENV]} is not an executable' \
            if os.environ.get(CONVERTER_ENV) else f'imxconv-pt is not on PATH and ${CONVERTER_ENV} is not set'
        return dict(ran=False, reason=f'{where}; install it with {CONVERTER_INSTALL}; or run `{command}` where '
                                      f'it is installed; then {PI_STEP}', command=command)
    if shutil.which('java') is None:
        return dict(ran=False, reason=f'imxconv-pt needs a Java 17 runtime (apt install openjdk-17-jre-headless), '
                                      f'none on PATH; then run `{command}`', command=command)
    os.makedirs(out_dir, exist_ok=True)
    try:
        proc = subprocess.run([exe, '-i', onnx_path, '-o', out_dir, '--no-input-persistency', '--overwrite-output'],
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return dict(ran=True, command=command, error=f'no result after {timeout} s')
    log = (proc.stdout or '') + (proc.stderr or '')
    packer = osp.join(out_dir, 'packerOut.zip')
    if proc.returncode != 0 or not osp.isfile(packer):
        errors = [line for line in log.splitlines() if 'ERROR' in line or 'Error' in line] or log.splitlines()[-3:]
        return dict(ran=True, command=command, error=' '.join(errors)[-600:] or f'exit status {proc.returncode}')
    reports = glob.glob(osp.join(out_dir, '*MemoryReport.json'))
    memory = json.load(open(reports[0])).get('Memory Report', {}) if reports else {}
    memory.pop('Networks', None)
    version = subprocess.run([exe, '--version'], capture_output=True, text=True).stdout.strip() or 'imxconv-pt'
    return dict(ran=True, command=command, version=version, packer=packer, out_dir=out_dir, memory=memory,
                memory_report=reports[0] if reports else None)
