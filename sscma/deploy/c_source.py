"""An int8 TFLite model as C source, the way TensorFlow Lite Micro and Arduino projects consume it.

The ``.cc`` starts with the export metadata (class names, task, input, output, config; see
:mod:`sscma.deploy.model_meta`) as JSON in a comment, and holds the flatbuffer without the metadata appended to
the ``.tflite``, so nothing of it reaches the board's flash. ``<name>_model_data.h`` declares the array, its
length, ``<NAME>_TENSOR_ARENA_SIZE``, the input / output layout and quantisation, and what the model means:
``<NAME>_NUM_CLASSES``, the ``<name>_labels`` array in output order, the input width / height / channels, channel
order and normalisation (inside the graph: the firmware feeds raw pixels), the output layout and the task's
numbers to read it (FOMO: ``<NAME>_OUTPUT_STRIDE``, the input pixels per cell, and ``<NAME>_SCORE_THRESHOLD``,
the one the checkpoint decodes with). ``<name>_model_data.cc`` holds the bytes as a 16-byte aligned
``const unsigned char`` array (flatbuffers need the alignment) and the labels.
"""
import json
import os.path as osp
import re
from typing import Any, Dict, Optional, Sequence


METADATA_TAG = 'sscma-metadata:'


def read_c_metadata(path: str) -> Optional[Dict[str, Any]]:
    """The export metadata :func:`write_c_model` put in the ``.cc``'s first comment, or ``None``."""
    with open(path, encoding='utf-8') as f:
        first = f.readline()
    if not first.startswith(f'/* {METADATA_TAG} '):
        return None
    try:
        return json.loads(first[len(f'/* {METADATA_TAG} '):].rstrip().removesuffix('*/'))
    except ValueError:
        return None


def c_identifier(name: str) -> str:
    """``name`` made a valid C identifier (letters, digits, underscores; not starting with a digit)."""
    ident = re.sub(r'\W', '_', name)
    return f'model_{ident}' if not ident or ident[0].isdigit() else ident


def _quant_lines(kind: str, detail: Dict) -> Sequence[str]:
    shape = 'x'.join(str(int(v)) for v in detail['shape'])
    return [f' * {kind}: {detail["dtype"]} {shape} ({detail.get("layout", "NHWC")}), scale {detail["scale"]:.9g}, '
            f'zero point {int(detail["zero_point"])}']


def c_float(value: float) -> str:
    """``value`` as a C float literal: ``0.35f``, ``1.0f`` (``1f`` is no C), ``3.9e-05f``."""
    text = f'{float(value):.9g}'
    return f'{text}{"" if any(c in text for c in ".e") else ".0"}f'


def c_string(text: str) -> str:
    """``text`` as a C string literal (UTF-8 bytes outside printable ASCII as octal escapes)."""
    out = []
    for b in str(text).encode('utf-8'):
        ch = chr(b)
        out.append('\\' + ch if ch in '"\\' else ch if 32 <= b < 127 and ch != '?' else f'\\{b:03o}')
    return '"' + ''.join(out) + '"'


def _meta_lines(upper: str, ident: str, meta: Dict[str, Any]) -> Sequence[str]:
    """``#define``s and the labels declaration of the header, from the export metadata."""
    classes = list(meta.get('classes') or [])
    inp = meta.get('input') or {}
    shape = list(inp.get('shape') or [])
    lines = [f'#define {upper}_NUM_CLASSES {len(classes)}']
    if meta.get('keypoint_names'):
        lines.append(f'#define {upper}_NUM_KEYPOINTS {len(meta["keypoint_names"])}')
    if len(shape) == 4:  # NCHW of the export graph; the TFLite input is NHWC
        lines += [f'#define {upper}_INPUT_CHANNELS {shape[1]}', f'#define {upper}_INPUT_HEIGHT {shape[2]}',
                  f'#define {upper}_INPUT_WIDTH {shape[3]}']
    for key, value in ((meta.get('output') or {}).get('constants') or {}).items():
        number = str(value) if isinstance(value, int) else c_float(value)
        lines.append(f'#define {upper}_{c_identifier(key).upper()} {number}')
    lines.append(f'extern const char* const {ident}_labels[{max(len(classes), 1)}];')
    return lines


def _meta_comment(meta: Dict[str, Any]) -> Sequence[str]:
    inp, out = meta.get('input') or {}, meta.get('output') or {}
    norm = inp.get('normalization_in_graph') or {}
    lines = [f' * task: {meta.get("task", "?")}; classes ({len(meta.get("classes") or [])}, output order): '
             f'{", ".join(map(str, meta.get("classes") or [])) or "none recorded"}']
    if meta.get('keypoint_names'):
        lines.append(f' * keypoints ({len(meta["keypoint_names"])}, output order): '
                     f'{", ".join(map(str, meta["keypoint_names"]))}; skeleton links (0-based): '
                     f'{json.dumps(meta.get("skeleton_links") or [])}')
    if inp:
        lines.append(f' * input pixels: {inp.get("channel_order", "?")}, {inp.get("value_range", "")}; '
                     f'normalisation inside the graph: mean {norm.get("mean")}, std {norm.get("std")}')
    if out.get('meaning'):
        lines.append(f' * output: {json.dumps(out["meaning"], ensure_ascii=True)[:400]}')
    return [line.replace('*/', '* /') for line in lines]  # a name must not close the comment


def write_c_model(tflite_path: str, out_dir: str, name: str, arena_bytes: int, ops: Sequence[str],
                  input_detail: Dict, output_detail: Dict, meta: Optional[Dict[str, Any]] = None) -> Dict[str, str]:
    """Write ``<name>_model_data.{h,cc}`` for ``tflite_path`` into ``out_dir``; returns their paths.

    Args:
        arena_bytes (int): The tensor arena TFLM needs (measured, see :func:`sscma.deploy.tflm.measure_arena`).
        ops (Sequence[str]): The builtin ops, for the firmware's ``MicroMutableOpResolver``.
        input_detail, output_detail (dict): ``dtype``, ``shape``, ``scale``, ``zero_point`` of the tensors.
        meta (dict, optional): The export metadata (:mod:`sscma.deploy.model_meta`): class names, input,
            output layout.
    """
    from .model_meta import meta_json, strip_zip_meta
    meta = meta or {}
    data = strip_zip_meta(open(tflite_path, 'rb').read())  # the flatbuffer alone: the metadata costs no flash
    ident = c_identifier(name)
    upper = ident.upper()
    header, source = osp.join(out_dir, f'{name}_model_data.h'), osp.join(out_dir, f'{name}_model_data.cc')
    resolver = ''.join(f'\n *   resolver.Add{"".join(p.capitalize() for p in op.lower().split("_"))}();'
                       for op in ops)
    comment = '\n'.join([f'/* {osp.basename(tflite_path)} for TensorFlow Lite Micro, written by sscma.',
                         f' * {len(data)} bytes; tensor arena: {arena_bytes} bytes (measured with TFLM on a 64-bit '
                         'host; a 32-bit MCU needs a little less).',
                         *_quant_lines('input', input_detail), *_quant_lines('output', output_detail),
                         f' * ops ({len(ops)}): {", ".join(ops)}',
                         f' *   tflite::MicroMutableOpResolver<{len(ops)}> resolver;{resolver}',
                         *_meta_comment(meta), ' */'])
    guard = f'{upper}_MODEL_DATA_H_'
    with open(header, 'w', encoding='utf-8') as f:
        f.write(f'{comment}\n#ifndef {guard}\n#define {guard}\n\n'
                f'#define {upper}_TENSOR_ARENA_SIZE {arena_bytes}\n'
                f'#define {upper}_INPUT_ZERO_POINT {int(input_detail["zero_point"])}\n'
                f'#define {upper}_INPUT_SCALE {c_float(input_detail["scale"])}\n'
                f'#define {upper}_OUTPUT_ZERO_POINT {int(output_detail["zero_point"])}\n'
                f'#define {upper}_OUTPUT_SCALE {c_float(output_detail["scale"])}\n'
                + ''.join(f'{line}\n' for line in _meta_lines(upper, ident, meta)) + '\n'
                f'extern const unsigned char {ident}_model_data[];\nextern const unsigned int {ident}_model_data_len;\n'
                f'\n#endif  // {guard}\n')
    labels = [c_string(c) for c in meta.get('classes') or []]
    rows = [', '.join(f'0x{b:02x}' for b in data[i:i + 12]) for i in range(0, len(data), 12)]
    with open(source, 'w', encoding='utf-8') as f:
        if meta:  # in a comment (no flash): JSON's "\/" keeps a "*/" inside from closing it
            text = meta_json(meta).replace('*/', '*\\/')
            f.write(f'/* {METADATA_TAG} {text} */\n')
        f.write(f'#include "{osp.basename(header)}"\n\n'
                f'alignas(16) const unsigned char {ident}_model_data[] = {{\n  ' + ',\n  '.join(rows) + '\n};\n'
                f'const unsigned int {ident}_model_data_len = {len(data)};\n'
                f'const char* const {ident}_labels[{max(len(labels), 1)}] = {{{", ".join(labels) or "0"}}};\n')
    return dict(header=header, source=source)
