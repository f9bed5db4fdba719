"""Mixed precision on CPU: bfloat16 autocast for the forward pass, float32 weights and optimizer."""
from contextlib import contextmanager

import torch
from mmengine.optim import OptimWrapper

from sscma.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class CpuBf16OptimWrapper(OptimWrapper):
    """``OptimWrapper`` that runs the forward pass (and so the backward) under ``torch.autocast('cpu', bfloat16)``.

    mmengine's ``AmpOptimWrapper`` refuses CPUs. bfloat16 has float32's exponent range, so no loss scaling
    is needed; weights, gradients and optimizer state stay float32 (autocast keeps reductions and losses in
    float32). ``tools/train.py --amp`` picks this wrapper on CPU machines whose CPU has native bfloat16
    (AVX512-BF16 / AMX), where it was measured faster (docs/distributed.md).
    """

    @contextmanager
    def optim_context(self, model: torch.nn.Module):
        with super().optim_context(model), torch.autocast(device_type='cpu', dtype=torch.bfloat16):
            yield
