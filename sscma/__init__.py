"""sscma: tiny vision models for microcontrollers and NPUs, built on the OpenMMLab registries."""
import os

# ppq ships old generated protobuf modules; the pure-Python protobuf backend accepts them. This must be
# set before protobuf is first imported in the process.
os.environ.setdefault('PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION', 'python')
# TensorFlow (TFLite export; also imported by torch.utils.tensorboard when installed): no start-up chatter.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from .ops import install as _install_lite_ops  # noqa: E402
from .version import __version__  # noqa: E402

# mmcv without compiled ops (mmcv-lite): the one op the zoo calls, on torchvision, before mmdet imports mmcv.ops
_install_lite_ops()

__all__ = ['__version__', 'Model']


def __getattr__(name: str):
    """``sscma.Model`` (:class:`sscma.apis.model.Model`), imported on first use: ``import sscma`` stays light for
    the tools, which only need the environment set above."""
    if name == 'Model':
        from .apis.model import Model
        return Model
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
