"""The compiled ops the zoo needs from mmcv, provided on torchvision where mmcv has none (:mod:`.lite_ext`)."""
from .lite_ext import CompiledOpMissing, has_compiled_ops, install

__all__ = ['CompiledOpMissing', 'has_compiled_ops', 'install']
