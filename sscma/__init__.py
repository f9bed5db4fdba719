"""sscma: tiny vision models for microcontrollers and NPUs, built on the OpenMMLab registries."""
import os

# ppq ships old generated protobuf modules; the pure-Python protobuf backend accepts them. This must be
# set before protobuf is first imported in the process.
os.environ.setdefault('PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION', 'python')

from .version import __version__  # noqa: E402

__all__ = ['__version__']
