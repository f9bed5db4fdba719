"""Imports of the optional heavy stacks (TensorFlow, and what imports it), done one way everywhere."""
import contextlib
import importlib.util
import io
from typing import Any


def load_triton_first() -> None:
    """Import triton (pulled in by torch / mmdet.models) before TensorFlow: its native library segfaults when
    it loads after TensorFlow's, so models built after an export in the same process would not import."""
    if importlib.util.find_spec('triton') is not None:
        import triton  # noqa: F401


def import_tensorflow(error: type, message: str) -> Any:
    """``tensorflow``, imported quietly (``sscma`` sets ``TF_CPP_MIN_LOG_LEVEL``; start-up chatter on stderr is
    dropped) after :func:`load_triton_first`; ``error(message + ' (<import error>)')`` when it is missing."""
    load_triton_first()
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            import tensorflow as tf
    except ImportError as e:
        raise error(f'{message} ({e})') from None
    tf.get_logger().setLevel('ERROR')
    return tf
