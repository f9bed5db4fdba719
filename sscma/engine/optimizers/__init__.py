from .cpu_bf16_optim_wrapper import CpuBf16OptimWrapper

__all__ = ['CpuBf16OptimWrapper']
