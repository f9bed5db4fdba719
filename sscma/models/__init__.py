from .backbones import *  # noqa: F401,F403
from .heads import *  # noqa: F401,F403
from .classifiers import *  # noqa: F401,F403
from .detectors import *  # noqa: F401,F403
from .segmentors import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .data_preprocessors import *  # noqa: F401,F403
