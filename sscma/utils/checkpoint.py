"""Read a checkpoint, fit it to a model and say what did not fit.

One implementation behind every place that loads weights: the exporter's and ``tools/test.py``'s exact check
(:func:`check_checkpoint_fits`), ``LoadMatchingWeightsHook`` (partial fits for transfer learning), the ImageNet
initialiser, the Sony transfer-learning entry point and the distillation teacher. Each caller words its own
message from the :class:`StateDictFit` it gets back.

Checkpoints are read with ``torch.load(weights_only=True)`` and the allow-list of
:func:`sscma.utils.setup_env.allow_checkpoint_globals` (mmengine's ``HistoryBuffer``, numpy scalars ...), never
with the unsafe unpickler.
"""
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from torch import nn

from .errors import SSCMAError

# BatchNorm's step counters: present or not depending on the torch version that saved the file
COUNTER_SUFFIX = 'num_batches_tracked'
STRIP_MODULE_PREFIX = ((r'^module\.', ''), )


class CheckpointError(SSCMAError, ValueError):
    """A file is not a readable checkpoint holding a state dict of tensors."""


@dataclass
class StateDictFit:
    """How a checkpoint's state dict fits a model's.

    Attributes:
        loaded (list): Model keys the checkpoint has with the same shape.
        reshaped (list): ``(key, checkpoint shape, model shape)`` of keys whose shapes differ.
        missing (list): Model keys the checkpoint lacks.
        unexpected (list): Checkpoint keys the model does not have.
    """
    loaded: List[str] = field(default_factory=list)
    reshaped: List[Tuple[str, tuple, tuple]] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return not (self.reshaped or self.missing or self.unexpected)

    def as_dict(self) -> Dict[str, List]:
        return dict(loaded=self.loaded, reshaped=self.reshaped, missing=self.missing, unexpected=self.unexpected)


def first_line(error: BaseException) -> str:
    """The first sentence of an exception's message (pickle and zip errors run over many lines)."""
    return (str(error).strip().splitlines() or [''])[0].split('. ')[0]


def read_checkpoint(path: str) -> Any:
    """``torch.load(path, weights_only=True)`` with the project's allow-list, on CPU.

    Raises:
        CheckpointError: the file is not a PyTorch checkpoint that loads safely (the message says why).
    """
    from .setup_env import allow_checkpoint_globals
    allow_checkpoint_globals()
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # UnpicklingError, RuntimeError (not a zip), EOFError ...
        raise CheckpointError(f'not a PyTorch checkpoint that loads with weights_only=True '
                              f'({type(e).__name__}: {first_line(e)})') from None


def state_dict_of(checkpoint: Any, revise_keys: Sequence[Tuple[str, str]] = STRIP_MODULE_PREFIX) -> 'OrderedDict':
    """The tensors of a loaded checkpoint (``checkpoint['state_dict']`` or the checkpoint itself), with
    ``revise_keys`` ``(pattern, replacement)`` applied to every key (default: drop a ``module.`` prefix left
    by DDP).

    Raises:
        CheckpointError: it holds no state dict of tensors.
    """
    state = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, Mapping) else None
    if not isinstance(state, Mapping):
        raise CheckpointError(f'holds a {type(checkpoint).__name__}, not a state dict')
    if not any(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError('holds no state dict of tensors')
    revised = OrderedDict()
    for key, value in state.items():
        for pattern, repl in revise_keys:
            key = re.sub(pattern, repl, key)
        revised[key] = value
    revised._metadata = getattr(state, '_metadata', OrderedDict())
    return revised


def load_state_dict(path: str, revise_keys: Sequence[Tuple[str, str]] = STRIP_MODULE_PREFIX) -> 'OrderedDict':
    """:func:`read_checkpoint` then :func:`state_dict_of`."""
    return state_dict_of(read_checkpoint(path), revise_keys)


def fit_state_dict(model_state: Mapping[str, torch.Tensor], ckpt_state: Mapping[str, Any],
                   count_counters: bool = True) -> Tuple['OrderedDict', StateDictFit]:
    """Merge a checkpoint's tensors into a model's state dict wherever the shapes agree.

    Args:
        model_state (Mapping): ``model.state_dict()``; its values are kept where the checkpoint does not fit.
        ckpt_state (Mapping): The checkpoint's state dict (``module.`` prefixes already removed).
        count_counters (bool): Report BatchNorm's ``num_batches_tracked`` counters too. Defaults to True.

    Returns:
        tuple: The merged state dict (exactly the model's keys) and the :class:`StateDictFit`.
    """
    merged = OrderedDict()
    fit = StateDictFit()

    def counted(key: str) -> bool:
        return count_counters or not key.endswith(COUNTER_SUFFIX)

    for key, value in model_state.items():
        src = ckpt_state.get(key)
        if src is None:
            merged[key] = value
            bucket = fit.missing
            entry = key
        elif tuple(getattr(src, 'shape', ())) != tuple(value.shape):
            merged[key] = value
            bucket = fit.reshaped
            entry = (key, tuple(getattr(src, 'shape', ())), tuple(value.shape))
        else:
            merged[key] = src
            bucket = fit.loaded
            entry = key
        if counted(key):
            bucket.append(entry)
    fit.unexpected = [k for k in ckpt_state if k not in model_state and counted(k)]
    return merged, fit


def match_state_dict(model_state: Mapping[str, torch.Tensor],
                     ckpt_state: Mapping[str, torch.Tensor]) -> Tuple['OrderedDict', Dict[str, List]]:
    """:func:`fit_state_dict` without the BatchNorm counters, the report as a dict (``loaded``, ``reshaped``,
    ``missing``, ``unexpected``): what transfer learning reports."""
    merged, fit = fit_state_dict(model_state, ckpt_state, count_counters=False)
    return merged, fit.as_dict()


def few(items: Sequence, shown: int = 3, fmt=str, more: str = ' (+{n} more)') -> str:
    """``a, b, c (+4 more)``: the first ``shown`` items of a long list."""
    text = ', '.join(fmt(i) for i in items[:shown])
    return text + (more.format(n=len(items) - shown) if len(items) > shown else '')


def check_checkpoint_fits(model: nn.Module, checkpoint: str, config: str, error: type = SSCMAError) -> None:
    """Raise ``error`` unless ``checkpoint`` is readable and holds exactly the weights of ``model``.

    mmengine loads test checkpoints non-strictly: one trained with another ``num_classes`` (or another
    ``widen_factor``) would be evaluated with randomly initialised layers and no error. A model wrapped for
    distributed training (mmengine's ``MMDistributedDataParallel``) is checked by its ``module``.
    """
    from mmengine.model import is_model_wrapper
    model = model.module if is_model_wrapper(model) else model
    try:
        state = load_state_dict(checkpoint)
    except CheckpointError as e:
        reason = str(e)
        raise error(f'checkpoint {checkpoint} {reason}' if reason.startswith('holds ') else
                    f'cannot read checkpoint {checkpoint}: {reason}') from None
    _, fit = fit_state_dict(model.state_dict(), state)
    if fit.exact:
        return
    parts = []
    if fit.reshaped:
        parts.append('shape mismatch (checkpoint vs model) '
                     + few(fit.reshaped, fmt=lambda r: f'{r[0]} {r[1]} vs {r[2]}'))
    if fit.missing:
        parts.append(f'{len(fit.missing)} model keys missing from the checkpoint: {few(fit.missing)}')
    if fit.unexpected:
        parts.append(f'{len(fit.unexpected)} unexpected keys: {few(fit.unexpected)}')
    raise error(f'checkpoint {checkpoint} does not match the model of {config}: ' + '; '.join(parts)
                + ' (same config and --cfg-options as for training?)')


def load_exactly(model: nn.Module, state: Mapping[str, Any]) -> Optional[StateDictFit]:
    """Copy ``state`` into ``model`` when it fits exactly; return the :class:`StateDictFit` otherwise."""
    merged, fit = fit_state_dict(model.state_dict(), state)
    if not fit.exact:
        return fit
    model.load_state_dict(merged, strict=True)
    return None


def checkpoint_dataset_meta(path: str) -> Mapping:
    """mmengine's ``meta['dataset_meta']`` of a checkpoint (what training, QAT, distillation and pruning write);
    empty when it has none."""
    try:
        checkpoint = read_checkpoint(path)
    except CheckpointError:
        return {}
    meta = checkpoint.get('meta') if isinstance(checkpoint, Mapping) else None
    dataset_meta = meta.get('dataset_meta') if isinstance(meta, Mapping) else None
    return dataset_meta if isinstance(dataset_meta, Mapping) else {}


def checkpoint_class_names(path: str) -> Optional[List[str]]:
    """The class names a checkpoint was trained on (``meta['dataset_meta']['classes']``), in the model's output
    order; ``None`` when it has none."""
    classes = checkpoint_dataset_meta(path).get('classes')
    return [str(c) for c in classes] if classes else None
