"""What a node made from a block looks like and how it runs, independent of ComfyUI's node API.

`NodePlan.from_block` reads a `ModularPipelineBlocks` of any kind (leaf, sequential, auto /
conditional, loop) and decides its sockets through a `SocketMapping`. `NodePlan.run` executes the
block on a fork of the incoming state. `adapters.factory` turns a plan into a ComfyUI node class.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from diffusers.modular_pipelines import (
    InputParam,
    LoopSequentialPipelineBlocks,
    ModularPipeline,
    ModularPipelineBlocks,
    OutputParam,
    PipelineState,
)

from .sockets import DEFAULT_MAPPING, DTYPE, IMAGE, MASK, SOCKET_PREFIX, TENSOR, VALUE, SocketMapping, SocketSpec
from .state import fork_state

logger = logging.getLogger(__name__)

STATE_SOCKET = "state"
COMPONENTS_SOCKET = "components"
RESERVED_SOCKETS = (STATE_SOCKET, COMPONENTS_SOCKET)
# The socket policy (see `InputSocket.shown_by_default`).
SHOWN_SOCKET_TYPES = (TENSOR, IMAGE, MASK)
HIDDEN_BY_DEFAULT = ("output_type", "return_dict", "dtype", "device")
HIDDEN_OUTPUT_TYPES = (VALUE, DTYPE, SOCKET_PREFIX + "DICT")


class NodeInputError(ValueError):
    """A node cannot run because an input is missing or unusable."""


class BlockExecutionError(RuntimeError):
    """The block raised; the message names the node and the block."""


@dataclass(frozen=True)
class InputSocket:
    param: InputParam
    spec: SocketSpec
    trigger: bool = False  # a conditional block's branch trigger that no branch declares

    @property
    def name(self) -> str:
        return self.spec.name or self.param.name

    @property
    def shown_by_default(self) -> bool:
        """The socket policy of a node that does not list its inputs: widgets for values with a
        default, sockets for tensors, images and masks; everything else (untyped values, dicts,
        `*_kwargs`, dtypes, lists, model-specific objects) stays reachable through the state."""
        if self.param.name.endswith("_kwargs") or self.param.name in HIDDEN_BY_DEFAULT:
            return False
        return self.trigger or self.spec.is_widget or self.spec.io_type in SHOWN_SOCKET_TYPES

    @property
    def is_required(self) -> bool:
        """Required in ComfyUI's sense: only widgets, which always carry a value. A required
        socket may still be fed by the incoming state, so it stays optional and is checked when
        the node runs."""
        return bool(self.param.required) and self.spec.is_widget


@dataclass(frozen=True)
class OutputSocket:
    param: OutputParam
    spec: SocketSpec

    @property
    def name(self) -> str:
        return self.param.name


@dataclass(frozen=True)
class NodePlan:
    block: ModularPipelineBlocks
    inputs: tuple[InputSocket, ...]
    outputs: tuple[OutputSocket, ...]
    fixed: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def block_name(self) -> str:
        return type(self.block).__name__

    @property
    def checks_required(self) -> bool:
        """Only a leaf block's `required` flags are reliable: a composite block's combined inputs can
        mark as required a value that one of its own sub-blocks produces (diffusers then raises at
        the leaf, naming the parameter)."""
        return not getattr(self.block, "sub_blocks", None)

    @property
    def needs_components(self) -> bool:
        return bool(self.block.expected_components)

    @classmethod
    def from_block(
        cls,
        block: ModularPipelineBlocks,
        mapping: SocketMapping = DEFAULT_MAPPING,
        *,
        exposed: Sequence[str] | None = None,
        fixed: Mapping[str, Any] | None = None,
        output_names: Sequence[str] | None = None,
    ) -> NodePlan:
        """`exposed` limits the input sockets to these parameter names (the others still come from
        the state or their default); `fixed` sets parameters to constant values without a socket;
        `output_names` limits the output sockets (everything stays in the output state)."""
        fixed = dict(fixed or {})
        if isinstance(block, LoopSequentialPipelineBlocks) and not block.sub_blocks:
            raise ValueError(f"block {type(block).__name__} is a loop without steps (a base for a family's loop)")
        inputs = []
        seen: set[str] = set()
        triggers = _undeclared_trigger_inputs(block)
        for param in [*block.inputs, *triggers]:
            if param.name is None:  # a kwargs_type group (e.g. all denoiser inputs): reached through the state
                continue
            # A loop's merged inputs can repeat a name whose declarations differ only in description
            # or default (diffusers dedupes them by equality): the first declaration wins.
            if param.name in seen or param.name in fixed:
                continue
            seen.add(param.name)
            # Copy: reading `.inputs` of conditional and loop blocks rewrites `required` on shared objects.
            param = dataclasses.replace(param)
            socket = InputSocket(
                param, mapping.input_socket(param), trigger=any(t.name == param.name for t in triggers)
            )
            if (exposed is None and not socket.shown_by_default) or (
                exposed is not None and param.name not in exposed
            ):
                continue
            inputs.append(socket)
        if exposed is not None:  # widgets in the order the node's definition lists them
            inputs.sort(key=lambda socket: list(exposed).index(socket.param.name))
        outputs: dict[str, OutputSocket] = {}
        for param in block.intermediate_outputs:
            if output_names is not None and param.name not in output_names:
                continue
            if param.name in outputs:
                continue
            socket = OutputSocket(dataclasses.replace(param), mapping.output_socket(param))
            if output_names is None and (socket.spec.io_type in HIDDEN_OUTPUT_TYPES or param.name.endswith("_kwargs")):
                continue  # untyped outputs stay in the output state
            outputs[param.name] = socket
        names = [socket.name for socket in inputs]
        clashes = {name for name in names if names.count(name) > 1 or name in RESERVED_SOCKETS}
        if clashes:
            raise ValueError(f"block {type(block).__name__}: input names {sorted(clashes)} clash with other sockets")
        return cls(block, tuple(inputs), tuple(outputs.values()), fixed)

    def run(
        self,
        values: Mapping[str, Any],
        *,
        pipeline: ModularPipeline,
        node_label: str,
        before_run: Callable[[PipelineState], None] | None = None,
    ) -> tuple[PipelineState, list[Any]]:
        """Run the block on a fork of `values["state"]`.

        Each input's value comes from its socket or widget, else the incoming state, else the
        parameter's default. Returns the new state and one value per output socket.
        """
        state = fork_state(values.get(STATE_SOCKET))
        for name, value in self.fixed.items():
            state.set(name, value)
        for socket in self.inputs:
            raw = values.get(socket.name)
            check_finite(node_label, socket.name, raw)
            if raw is not None and not _is_unset(raw, socket.spec.unset):
                value = socket.spec.to_block(raw, socket.param) if socket.spec.to_block else raw
                state.set(socket.param.name, value, socket.param.kwargs_type)
            elif self.checks_required and state.get(socket.param.name) is None and socket.param.required:
                raise NodeInputError(
                    f"{node_label}: block {self.block_name} needs input '{socket.name}'"
                    + (f" (parameter '{socket.param.name}')" if socket.name != socket.param.name else "")
                    + ": connect or set it, or provide it in the incoming state"
                )
        if before_run is not None:
            before_run(state)
        try:
            _, state = self.block(pipeline, state)
        except Exception as error:
            if _is_interrupt(error):
                raise
            if isinstance(error, torch.OutOfMemoryError):
                # Unwrapped, so ComfyUI's out-of-memory handling (unload every model, the OOM tip) runs.
                logger.error("%s: block %s ran out of memory", node_label, self.block_name)
                raise
            unset = [s.name for s in self.inputs if state.get(s.param.name) is None and s.param.default is None]
            hint = f" (inputs without a value: {', '.join(unset)})" if unset else ""
            raise BlockExecutionError(
                f"{node_label}: block {self.block_name} failed: {type(error).__name__}: {error}{hint}"
            ) from error
        outputs = []
        for socket in self.outputs:
            value = state.get(socket.name)
            outputs.append(socket.spec.from_block(value, socket.param) if socket.spec.from_block else value)
        return state, outputs


def check_finite(node_label: str, name: str, value: Any) -> None:
    """NaN passes ComfyUI's min/max checks (every comparison with it is false) and would run to a
    black image; infinity is refused the same way."""
    if isinstance(value, float) and not math.isfinite(value):
        raise NodeInputError(f"{node_label}: input '{name}' is {value}; give a finite number")


def _undeclared_trigger_inputs(block: ModularPipelineBlocks) -> list[InputParam]:
    """A conditional block picks its branch from trigger values in the state; a trigger that no
    branch declares as an input still needs a socket to be settable."""
    declared = {param.name for param in block.inputs}
    names = getattr(block, "block_names", None) or list(getattr(block, "sub_blocks", {}))
    params = []
    for trigger, branch in zip(getattr(block, "block_trigger_inputs", None) or [], names, strict=False):
        if trigger is not None and trigger not in declared:
            params.append(InputParam(trigger, description=f"Set to run the '{branch}' branch of this block."))
    return params


def _is_unset(value: Any, unset: Any) -> bool:
    return unset is not None and type(value) is type(unset) and value == unset


def _is_interrupt(error: BaseException) -> bool:
    # ComfyUI's InterruptProcessingException (an Exception in 0.3.75, a BaseException later) must
    # reach the executor untouched so the prompt is reported as interrupted, not failed.
    return type(error).__name__ == "InterruptProcessingException"
