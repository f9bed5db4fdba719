"""Plain JSON values from tensors, numpy values and containers of them."""
from typing import Any

import numpy as np
import torch


def to_jsonable(value: Any) -> Any:
    """Turn tensors / numpy values (and containers of them) into plain JSON values."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value


def scalar_metrics(metrics: Any) -> dict:
    """The numeric entries of a metrics dict (per-class lists, names and flags left out)."""
    return {k: v for k, v in (metrics or {}).items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
