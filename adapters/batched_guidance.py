"""Batched guidance: the conditional and unconditional passes of a guider as ONE model call.

Diffusers' loop denoisers run every batch a guider prepares as its own model call, so classifier-free
guidance costs two denoiser passes per step (ComfyUI's sampler runs both as one batch of two; that is
the whole per-step gap measured in docs/benchmarks.md). `prepare_components` turns each node's own copy
of a guider into its batched version when `MDIFF_BATCHED_GUIDANCE` (read once, at import; `mode_from`)
allows it: by default (`auto`) for the families the table marks as proven on a fixture, with `1` for
every family, with `0` never. Each step then runs batched only when the device's free memory allows the
merged call, by ComfyUI's own rule for batching conds (`memory_allows`); else its two passes run one by
one. Nothing here knows a family:

- `prepare_inputs` / `prepare_inputs_from_block_state` call the guider's own; when it returns exactly
  two batches (conditional, unconditional), the guider does not touch the model per pass (its class
  keeps `BaseGuidance.prepare_models` / `cleanup_models`: not PAG, SLG, SEG or AutoGuidance), and every
  field of both batches is None in both, or a tensor of the same shape, dtype and device in both, or a
  list of tensors of the same length in both, with one leading size B shared by all fields, the loop
  gets ONE merged batch: tensors `torch.cat([cond, uncond])`, lists `cond + uncond` (size 2B).
  Otherwise the guider's own list goes back unchanged (guidance off or outside its start/stop range:
  one batch; PAG/APG-style guiders with three; fields whose shapes differ, e.g. a negative prompt
  encoded to another length).
- `prepare_models(model)` hooks the model's next call (a one-shot forward pre-hook, removed by that
  call or by `cleanup_models`; it leaves alone a call that carries no merged 2B field): every tensor
  argument, positional or keyword and inside dicts, lists and tuples, whose dim 0 is B is repeated to
  `torch.cat([x, x])`, and every list of B tensors (per-sample inputs such as latents given as a list)
  to `x + x`. Guider fields are already 2B and stay as they are; 0-d tensors (a scalar timestep)
  broadcast. LIMITS of this rule: a non-batch tensor argument whose dim 0 happens to equal B is repeated
  too; with B == 1 that is any tensor with a leading dim of 1, which broadcasts in the models seen so far
  but is not guaranteed to. Only the model handed to `prepare_models` is hooked: a loop that calls a
  second model before it (a ControlNet denoiser) is not supported, so a run that has a `controlnet`
  component runs its guider unbatched (`SECOND_MODELS`), and a guider's `is_conditional` is
  True for the merged pass (a ControlNet "guess mode" would use the conditional path for both halves).
- `__call__` splits the merged `noise_pred` in halves along dim 0, sets them on the two original
  batches and calls the guider's own `__call__` with them, so the guidance formula is diffusers'.

Everything else is the guider itself: the batched guider is the same object with a subclass of its own
class (`isinstance`, `config`, `set_state`, `num_conditions`, `from_config`, `deepcopy` all unchanged).
Results are close to, not bit-identical with, two separate passes (batched kernels sum in another
order; list inputs of different lengths, e.g. captions, are padded to the longest); the parity tests
therefore run with `MDIFF_BATCHED_GUIDANCE=0`.
"""

from __future__ import annotations

import logging
import math
import os
from typing import Any

import comfy.model_management as mm
import torch
from diffusers.guiders.guider_utils import BaseGuidance
from diffusers.modular_pipelines import BlockState
from torch.utils.hooks import RemovableHandle

logger = logging.getLogger(__name__)

ENV_VAR = "MDIFF_BATCHED_GUIDANCE"
AUTO, ON, OFF = "auto", "on", "off"
MERGED_IDENTIFIER = "mdiff_batched_guidance"
# ComfyUI's estimate of a model call's memory (comfy/model_base.py `BaseModel.memory_required`, its
# default `memory_usage_factor`), and the margin its samplers ask for before batching conds.
MEMORY_USAGE_FACTOR = 2.0
MEMORY_MARGIN = 1.5


def mode_from(value: str | None) -> str:
    """`MDIFF_BATCHED_GUIDANCE`: unset or `auto` batches the families proven on a fixture, 1/true/yes/on
    every family, 0/false/no/off none (read once, at import)."""
    value = (value or "").strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return ON
    if value in {"0", "false", "no", "off"}:
        return OFF
    return AUTO


MODE = mode_from(os.environ.get(ENV_VAR))

_IDENTIFIER = BaseGuidance._identifier_key


def _field_size(cond: Any, uncond: Any) -> int | None:
    """The leading (batch) size of one guider field when its two values can be merged, else None."""
    if isinstance(cond, torch.Tensor) and isinstance(uncond, torch.Tensor):
        same = cond.shape == uncond.shape and cond.dtype == uncond.dtype and cond.device == uncond.device
        return cond.shape[0] if same and cond.ndim > 0 else None
    if isinstance(cond, list | tuple) and isinstance(uncond, list | tuple):
        values = [*cond, *uncond]
        tensors = all(isinstance(value, torch.Tensor) for value in values)
        return len(cond) if tensors and len(cond) == len(uncond) and cond else None
    return None


def merge_batches(cond: BlockState, uncond: BlockState) -> tuple[BlockState, int] | None:
    """One batch holding `cond` then `uncond` along dim 0, and the single batch size B; None when a
    field cannot be merged or the fields disagree on B."""
    fields = {key: value for key, value in cond.as_dict().items() if key != _IDENTIFIER}
    if set(fields) != {key for key in uncond.as_dict() if key != _IDENTIFIER}:
        return None
    merged: dict[str, Any] = {}
    sizes: set[int] = set()
    for key, value in fields.items():
        other = getattr(uncond, key)
        if value is None and other is None:
            merged[key] = None
            continue
        size = _field_size(value, other)
        if size is None:
            return None
        sizes.add(size)
        if isinstance(value, torch.Tensor):
            merged[key] = torch.cat([value, other])
        else:
            merged[key] = [*value, *other]
    if len(sizes) != 1:
        return None
    return BlockState(**merged, **{_IDENTIFIER: MERGED_IDENTIFIER}), sizes.pop()


def repeat_batch(value: Any, size: int) -> Any:
    """`value` with every tensor whose dim 0 is `size` repeated twice along dim 0 and every list of
    `size` tensors repeated twice, looking inside dicts, lists and tuples (see the module's LIMITS)."""
    if isinstance(value, torch.Tensor):
        return torch.cat([value, value]) if value.ndim > 0 and value.shape[0] == size else value
    if isinstance(value, dict):
        return {key: repeat_batch(item, size) for key, item in value.items()}
    if isinstance(value, list) and len(value) == size and all(isinstance(item, torch.Tensor) for item in value):
        return value + value
    if isinstance(value, list):
        return [repeat_batch(item, size) for item in value]
    if isinstance(value, tuple):
        items = [repeat_batch(item, size) for item in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)  # a named tuple, or a tuple
    return value


def _has_batch(value: Any, size: int) -> bool:
    """Whether `value` holds a tensor whose dim 0 is `size`, or a list of `size` tensors."""
    if isinstance(value, torch.Tensor):
        return value.ndim > 0 and value.shape[0] == size
    if isinstance(value, dict):
        return any(_has_batch(item, size) for item in value.values())
    if isinstance(value, list | tuple):
        if isinstance(value, list) and len(value) == size and all(isinstance(item, torch.Tensor) for item in value):
            return True
        return any(_has_batch(item, size) for item in value)
    return False


class BatchedGuidance:
    """Mixin placed in front of a guider's own class (see `batch_guider`); the module docstring has the
    rules. State lives on the instance; class-level defaults cover instances made by `from_config`."""

    _mdiff_merged: BlockState | None = None
    _mdiff_originals: tuple[BlockState, BlockState] | None = None
    _mdiff_size: int = 0
    _mdiff_hook: RemovableHandle | None = None
    _mdiff_mergeable: bool = False  # set per class: the guider does not change the model per pass

    def prepare_inputs(self, *args: Any, **kwargs: Any) -> list[BlockState]:
        return self._mdiff_merge(super().prepare_inputs(*args, **kwargs), None)  # type: ignore[misc]

    def prepare_inputs_from_block_state(self, *args: Any, **kwargs: Any) -> list[BlockState]:
        batches = super().prepare_inputs_from_block_state(*args, **kwargs)  # type: ignore[misc]
        return self._mdiff_merge(batches, args[0] if args else kwargs.get("data"))

    def _mdiff_merge(self, batches: list[BlockState], block_state: Any) -> list[BlockState]:
        self._mdiff_reset()
        if not self._mdiff_mergeable or len(batches) != 2:
            return batches
        merged = merge_batches(*batches)
        if merged is None:
            logger.debug("batched guidance: the guider's batches cannot be merged, running them one by one")
            return batches
        if not memory_allows(merged[0], merged[1], getattr(block_state, "latents", None)):
            logger.debug("batched guidance: not enough free memory for one call of 2 x %d, two calls", merged[1])
            return batches
        self._mdiff_merged, self._mdiff_size = merged
        self._mdiff_originals = (batches[0], batches[1])
        return [self._mdiff_merged]

    def _mdiff_reset(self) -> None:
        self._mdiff_merged = self._mdiff_originals = None
        self._mdiff_remove_hook()

    def _mdiff_remove_hook(self) -> None:
        if self._mdiff_hook is not None:
            self._mdiff_hook.remove()
            self._mdiff_hook = None

    def prepare_models(self, denoiser: torch.nn.Module) -> None:
        super().prepare_models(denoiser)  # type: ignore[misc]
        if self._mdiff_merged is None or not isinstance(denoiser, torch.nn.Module):
            return
        self._mdiff_remove_hook()
        size = self._mdiff_size
        handle: RemovableHandle | None = None

        def repeat_inputs(module: torch.nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
            # One call only, and only a call that carries the merged fields: a hook left behind by a run
            # that failed before `cleanup_models` never touches another call of the shared model.
            handle.remove()
            if self._mdiff_hook is not handle or not (_has_batch(kwargs, 2 * size) or _has_batch(args, 2 * size)):
                return None
            return repeat_batch(args, size), repeat_batch(kwargs, size)

        handle = denoiser.register_forward_pre_hook(repeat_inputs, with_kwargs=True)
        self._mdiff_hook = handle

    def cleanup_models(self, denoiser: torch.nn.Module) -> None:
        self._mdiff_remove_hook()
        super().cleanup_models(denoiser)  # type: ignore[misc]

    def __call__(self, data: list[BlockState]) -> Any:
        merged, originals, size = self._mdiff_merged, self._mdiff_originals, self._mdiff_size
        if merged is not None and originals is not None and len(data) == 1 and data[0] is merged:
            self._mdiff_reset()
            prediction = getattr(merged, "noise_pred", None)
            if not isinstance(prediction, torch.Tensor) or prediction.ndim == 0 or prediction.shape[0] != 2 * size:
                shape = tuple(prediction.shape) if isinstance(prediction, torch.Tensor) else type(prediction).__name__
                raise RuntimeError(
                    f"batched guidance ({ENV_VAR}): the model gave noise_pred {shape} for a merged batch of "
                    f"{2 * size}; this denoiser cannot run batched, set {ENV_VAR}=0"
                )
            originals[0].noise_pred, originals[1].noise_pred = prediction[:size], prediction[size:]
            data = list(originals)
        return super().__call__(data)  # type: ignore[misc]


_CLASSES: dict[type, type] = {}


def _batched_class(base: type) -> type:
    """The batched subclass of a guider class, one per class. It keeps the class's name, so configs,
    `from_config` and reprs read exactly as the plain guider's."""
    if base not in _CLASSES:
        mergeable = (
            base.prepare_models is BaseGuidance.prepare_models and base.cleanup_models is BaseGuidance.cleanup_models
        )
        namespace = {"_mdiff_mergeable": mergeable, "__module__": __name__}
        _CLASSES[base] = type(base.__name__, (BatchedGuidance, base), namespace)
    return _CLASSES[base]


def batch_guider(guider: Any) -> Any:
    """Make `guider` (a node's own copy) batched, in place; anything that is not a diffusers guider, or
    is batched already, comes back as it is."""
    if isinstance(guider, BaseGuidance) and not isinstance(guider, BatchedGuidance):
        guider.__class__ = _batched_class(type(guider))
    return guider


def unbatch_guider(guider: Any) -> Any:
    """The plain guider again (in place), e.g. a batched one carried in from an upstream node."""
    if isinstance(guider, BatchedGuidance):
        guider.__class__ = type(guider).__bases__[1]
    return guider


def memory_allows(merged: BlockState, size: int, latents: Any) -> bool:
    """ComfyUI's rule for batching conds (comfy/samplers.py): the model's estimated need for the merged
    call, with a margin, fits the device's free memory. The need is ComfyUI's estimate for a model of
    unknown kind from the latents' shape (else the largest merged tensor's)."""
    sample = latents if isinstance(latents, torch.Tensor) else _largest_tensor(merged)
    if sample is None:
        return True
    area = 2 * size * math.prod(sample.shape[2:] if sample.ndim > 2 else sample.shape[1:2])
    if mm.xformers_enabled() or mm.pytorch_attention_flash_attention():
        need = area * mm.dtype_size(sample.dtype) * 0.01 * MEMORY_USAGE_FACTOR * 1024 * 1024
    else:
        need = area * 0.15 * MEMORY_USAGE_FACTOR * 1024 * 1024
    return need * MEMORY_MARGIN < mm.get_free_memory(sample.device)


def _largest_tensor(batch: BlockState) -> torch.Tensor | None:
    tensors = [value for value in batch.as_dict().values() if isinstance(value, torch.Tensor) and value.ndim > 0]
    return max(tensors, key=lambda tensor: tensor.numel(), default=None)


# Components that a loop calls with the guider's inputs besides the model handed to `prepare_models`:
# their calls would not get the repeated inputs, so a pipeline with one runs unbatched.
SECOND_MODELS = ("controlnet",)


def batch_guider_if_enabled(component: Any, component_names: Any = (), proven: bool = False) -> Any:
    """`batch_guider` when the mode allows it (`auto`: for a family `proven` on a fixture; `on`: any)
    and none of the run's components (`component_names`: those it has) is a second model called per pass
    (a ControlNet), else the plain guider. Whether a step then runs batched is decided per step, by
    memory (`memory_allows`)."""
    allowed = MODE == ON or (MODE == AUTO and proven)
    if allowed and not any(kind in name for name in component_names for kind in SECOND_MODELS):
        return batch_guider(component)
    return unbatch_guider(component)


def is_batched(guider: Any) -> bool:
    return isinstance(guider, BatchedGuidance)
