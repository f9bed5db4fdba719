from .run_summary_hook import RunSummaryHook

__all__ = ['RunSummaryHook']
