"""An int8 TFLite model as C source, the way TensorFlow Lite Micro and Arduino projects consume it.

``<name>_model_data.h`` declares the array, its length, ``<NAME>_TENSOR_ARENA_SIZE`` and the input / output
layout and quantisation in comments plus constants; ``<name>_model_data.cc`` holds the bytes as a 16-byte
aligned ``const unsigned char`` array (flatbuffers need the alignment).
"""
import os.path as osp
import re
from typing import Dict, Sequence


def c_identifier(name: str) -> str:
    """``name`` made a valid C identifier (letters, digits, underscores; not starting with a digit)."""
    ident = re.sub(r'\W', '_', name)
    return f'model_{ident}' if not ident or ident[0].isdigit() else ident


def _quant_lines(kind: str, detail: Dict) -> Sequence[str]:
    shape = 'x'.join(str(int(v)) for v in detail['shape'])
    return [f' * {kind}: {detail["dtype"]} {shape} ({detail.get("layout", "NHWC")}), scale {detail["scale"]:.9g}, '
            f'zero point {int(detail["zero_point"])}']


def write_c_model(tflite_path: str, out_dir: str, name: str, arena_bytes: int, ops: Sequence[str],
                  input_detail: Dict, output_detail: Dict) -> Dict[str, str]:
    """Write ``<name>_model_data.{h,cc}`` for ``tflite_path`` into ``out_dir``; returns their paths.

    Args:
        arena_bytes (int): The tensor arena TFLM needs (measured, see :func:`sscma.deploy.tflm.measure_arena`).
        ops (Sequence[str]): The builtin ops, for the firmware's ``MicroMutableOpResolver``.
        input_detail, output_detail (dict): ``dtype``, ``shape``, ``scale``, ``zero_point`` of the tensors.
    """
    data = open(tflite_path, 'rb').read()
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
                         ' */'])
    guard = f'{upper}_MODEL_DATA_H_'
    with open(header, 'w', encoding='utf-8') as f:
        f.write(f'{comment}\n#ifndef {guard}\n#define {guard}\n\n'
                f'#define {upper}_TENSOR_ARENA_SIZE {arena_bytes}\n'
                f'#define {upper}_INPUT_ZERO_POINT {int(input_detail["zero_point"])}\n'
                f'#define {upper}_INPUT_SCALE {float(input_detail["scale"]):.9g}f\n'
                f'#define {upper}_OUTPUT_ZERO_POINT {int(output_detail["zero_point"])}\n'
                f'#define {upper}_OUTPUT_SCALE {float(output_detail["scale"]):.9g}f\n\n'
                f'extern const unsigned char {ident}_model_data[];\nextern const unsigned int {ident}_model_data_len;\n'
                f'\n#endif  // {guard}\n')
    rows = [', '.join(f'0x{b:02x}' for b in data[i:i + 12]) for i in range(0, len(data), 12)]
    with open(source, 'w', encoding='utf-8') as f:
        f.write(f'#include "{osp.basename(header)}"\n\n'
                f'alignas(16) const unsigned char {ident}_model_data[] = {{\n  ' + ',\n  '.join(rows) + '\n};\n'
                f'const unsigned int {ident}_model_data_len = {len(data)};\n')
    return dict(header=header, source=source)
