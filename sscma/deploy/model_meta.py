"""What an exported file says about itself: class names, task, input size, channel order, normalisation and
the output layout, stored inside the file so that a file alone is enough to label and score its outputs.

Each export target stores the same JSON (``ExportTarget.write_meta``) in its format's own place:

- ONNX: ``metadata_props`` ``sscma`` (the JSON) and ``names`` (the class names as a JSON list);
- TorchScript: the ``extra_files`` entry ``sscma.json``;
- TFLite (and vela): the associated-file convention of TFLite Support, a zip appended after the flatbuffer
  holding ``sscma.json`` and ``labels.txt`` (one name a line); interpreters ignore the trailing bytes and the
  model's buffers are not touched;
- TFLite Micro C source: the JSON in the ``.cc``'s first comment (the array is the flatbuffer alone), a
  ``labels`` array and ``NUM_CLASSES`` / input constants in the header (:mod:`sscma.deploy.c_source`).
"""
import io
import json
import zipfile
from typing import Any, Dict, List, Optional, Union

META_FILE = 'sscma.json'
LABELS_FILE = 'labels.txt'
ONNX_KEY = 'sscma'


def meta_json(meta: Dict[str, Any]) -> str:
    return json.dumps(meta, sort_keys=True, ensure_ascii=False)


def _parse(text: Union[str, bytes], where: str) -> Optional[Dict[str, Any]]:
    try:
        meta = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        from mmengine.logging import print_log
        print_log(f'{where}: its sscma metadata is not valid JSON; ignored', logger='current', level=30)
        return None
    return meta if isinstance(meta, dict) else None


# ------------------------------------------------------------------------------ appended zip (TFLite)
def zip_meta_bytes(meta: Dict[str, Any]) -> bytes:
    """A small zip with ``sscma.json`` and ``labels.txt`` (TFLite Support's associated files)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w', zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(META_FILE, meta_json(meta))
        zf.writestr(LABELS_FILE, ''.join(f'{name}\n' for name in meta.get('classes') or []))
    return buf.getvalue()


def append_zip_meta(path: str, meta: Dict[str, Any]) -> None:
    """Append the metadata zip to the flatbuffer at ``path`` (replacing one appended before)."""
    with open(path, 'rb') as f:
        data = f.read()
    data = strip_zip_meta(data)
    with open(path, 'wb') as f:
        f.write(data + zip_meta_bytes(meta))


def strip_zip_meta(data: bytes) -> bytes:
    """``data`` without an appended metadata zip (the flatbuffer alone)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            if META_FILE not in zf.namelist():
                return data
            # zipfile adds the bytes before the archive to every offset: the first header is where it begins
            return data[:min(info.header_offset for info in zf.infolist())]
    except zipfile.BadZipFile:
        return data


def read_zip_meta(data: bytes, where: str) -> Optional[Dict[str, Any]]:
    """The ``sscma.json`` of a zip appended to ``data``, or ``None``."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            if META_FILE not in zf.namelist():
                return None
            return _parse(zf.read(META_FILE), where)
    except zipfile.BadZipFile:
        return None


# ------------------------------------------------------------------------------------------- ONNX
def write_onnx_meta(path: str, meta: Dict[str, Any]) -> None:
    """Set ``metadata_props`` ``sscma`` and ``names`` of the ONNX file at ``path``."""
    import onnx
    model = onnx.load(path)
    props = {p.key: p.value for p in model.metadata_props}
    props.update({ONNX_KEY: meta_json(meta), 'names': json.dumps(list(meta.get('classes') or []),
                                                                  ensure_ascii=False)})
    del model.metadata_props[:]
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, path)


def read_onnx_meta(path: str) -> Optional[Dict[str, Any]]:
    import onnx
    model = onnx.load(path, load_external_data=False)
    props = {p.key: p.value for p in model.metadata_props}
    return _parse(props[ONNX_KEY], path) if ONNX_KEY in props else None


# ------------------------------------------------------------------------------------ TorchScript
def write_torchscript_meta(path: str, meta: Dict[str, Any]) -> None:
    import torch
    module = torch.jit.load(path, map_location='cpu')
    torch.jit.save(module, path, _extra_files={META_FILE: meta_json(meta)})


def read_torchscript_meta(path: str) -> Optional[Dict[str, Any]]:
    with zipfile.ZipFile(path) as zf:
        entry = next((n for n in zf.namelist() if n.endswith(f'/extra/{META_FILE}')), None)
        return _parse(zf.read(entry), path) if entry else None


# -------------------------------------------------------------------------------------- any file
def read_export_meta(path: str) -> Optional[Dict[str, Any]]:
    """The metadata stored in the exported file ``path`` by the target that wrote it, or ``None``."""
    from .targets.base import target_for_file
    target = target_for_file(path)
    return target.read_meta(path) if target else None


def model_class_names(model_file: str) -> Optional[List[str]]:
    """The class names a model file carries, in its output order: a checkpoint's ``meta.dataset_meta``, an
    exported file's metadata; ``None`` when it carries none (an old checkpoint, a foreign ``.onnx``)."""
    from sscma.utils.checkpoint import checkpoint_class_names

    from .targets.base import target_for_file
    if target_for_file(model_file) is not None:
        meta = read_export_meta(model_file) or {}
        classes = meta.get('classes')
        return [str(c) for c in classes] if classes else None
    return checkpoint_class_names(model_file)


KEYPOINT_META = ('keypoint_names', 'skeleton_links')


def model_keypoints(model_file: str) -> Dict[str, list]:
    """The keypoint names and skeleton links (0-based pairs) a model file carries: a checkpoint's
    ``meta.dataset_meta`` or an exported file's metadata; empty for models without keypoints."""
    from sscma.utils.checkpoint import checkpoint_dataset_meta

    from .targets.base import target_for_file
    meta = (read_export_meta(model_file) or {}) if target_for_file(model_file) is not None else \
        checkpoint_dataset_meta(model_file)
    return {k: [list(v) if isinstance(v, (list, tuple)) else str(v) for v in meta[k]]
            for k in KEYPOINT_META if meta.get(k)}
