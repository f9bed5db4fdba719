"""mmengine's TensorBoard backend without TensorFlow in the training process."""
import sys
import types

from mmengine.visualization import TensorboardVisBackend as MMEngineTensorboardVisBackend

from sscma.registry import VISBACKENDS

NO_TENSORFLOW = 'tensorboard.compat.notf'


def tensorboard_without_tensorflow() -> None:
    """Make TensorBoard use its own TensorFlow stub, as its ``no_tensorflow`` build target does.

    ``tensorboard.compat.tf`` imports TensorFlow whenever it is installed (here, for TFLite export), and
    ``torch.utils.tensorboard`` goes through it: on this project's stack that is ~650 MB resident, a third of a
    training process, to write event files that the stub writes as well. The marker module is what TensorBoard
    looks for; a process that already imported TensorFlow is left as it is.
    """
    if 'tensorflow' not in sys.modules and NO_TENSORFLOW not in sys.modules:
        sys.modules[NO_TENSORFLOW] = types.ModuleType(NO_TENSORFLOW)


@VISBACKENDS.register_module(name='TensorboardVisBackend')
class TensorboardVisBackend(MMEngineTensorboardVisBackend):
    """``mmengine.TensorboardVisBackend`` (same arguments and files) that keeps TensorFlow out of the run."""

    def _init_env(self):
        tensorboard_without_tensorflow()
        super()._init_env()
