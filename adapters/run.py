"""How a block node runs: `BlockRun.__call__`, from ComfyUI's input values to the node's outputs, top to bottom.

fork the incoming state → set the node's inputs on the fork → fill the node's own pipeline with
components (models shared, schedulers and guiders copied, component settings applied) → load the models
under ComfyUI's model management → run the block with its loops reporting progress → convert the
outputs (images, audio with its sample rate, video with its frame rate) → carry this run's schedulers and
guiders downstream in the output state.

A node runs its own copy of its block with every loop instrumented (`private_copy`, made once when the
node is built); the loops report to the run that is watching them (`loops.watching`), so nothing here
calls back into the node factory.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from diffusers.modular_pipelines import ModularPipeline, ModularPipelineBlocks, PipelineState

from .components import ComponentsBundle, carry_components, prepare_components
from .loops import LoopReporter, instrument_loops, loop_blocks, watching
from .media import MediaDefaults, find_frame_rate, find_sample_rate, to_comfy_audio, to_comfy_video
from .plan import COMPONENTS_SOCKET, STATE_SOCKET, NodePlan
from .quiet import known_benign_diffusers_lines_hidden
from .socket_types import AUDIO, COMBO
from .spec import SocketSpec
from .state import fork_state

logger = logging.getLogger(__name__)


def private_copy(block: ModularPipelineBlocks) -> ModularPipelineBlocks:
    """A node's own copy of its block (blocks are mutable specs, and reading a conditional block's
    inputs rewrites shared ones), with every loop in it instrumented."""
    block = copy.deepcopy(block)
    instrument_loops(block)
    return block


class NodeInputError(ValueError):
    """A node cannot run because an input is missing or unusable."""


class BlockExecutionError(RuntimeError):
    """The block raised; the message names the node and the block."""


@dataclass(frozen=True, kw_only=True)
class BlockRun:
    """Runs one node's block. `node_id` and `display_name` name the node in errors; `family` (a
    diffusers `modular_pipelines` folder) refuses a components bundle of another family; `media` gives
    the frame and sample rates neither the state nor the components give."""

    node_id: str
    display_name: str
    plan: NodePlan
    family: str | None = None
    media: MediaDefaults = MediaDefaults()

    @functools.cached_property
    def has_loops(self) -> bool:
        return bool(loop_blocks(self.plan.block))

    def __call__(self, values: Mapping[str, Any], unique_id: str | None = None) -> list[Any]:
        """The node's outputs for ComfyUI's input `values`: the new state, then one value per output socket."""
        label = f"node {unique_id} '{self.display_name}' ({self.node_id})"
        bundle = self.components_input(values, label)
        state = fork_state(values.get(STATE_SOCKET))
        self.set_inputs(state, values, label)
        with known_benign_diffusers_lines_hidden():
            pipeline = self.plan.block.init_pipeline()  # its own per run (under a millisecond): nothing outlives it
            scoped = prepare_components(pipeline, bundle, state, self.config_overrides(values, label))
        if bundle is not None:
            bundle.load(pipeline.component_names)
        reporter = LoopReporter(unique_id, bundle)
        with watching(reporter, scoped.values()) if self.has_loops else contextlib.nullcontext():
            state = self.run_block(pipeline, state, label)
        outputs = self.output_values(state, pipeline)
        carry_components(state, scoped)
        return [state, *outputs]

    def components_input(self, values: Mapping[str, Any], label: str) -> ComponentsBundle | None:
        bundle: ComponentsBundle | None = values.get(COMPONENTS_SOCKET)
        if bundle is not None and self.family and bundle.family and bundle.family != self.family:
            raise NodeInputError(
                f"{label}: its components input holds a '{bundle.family}' model ({bundle.source}), but this node "
                f"runs '{self.family}' blocks; connect a Load Diffusers Components node with a "
                f"'{self.family}' model"
            )
        expected = {component.name for component in self.plan.block.expected_components}
        absent = [name for name in bundle.missing if name in expected] if bundle is not None else []
        if absent:
            raise NodeInputError(
                f"{label}: block {self.plan.block_name} needs {', '.join(absent)}, which {bundle.source} has no "
                "weights for (a configs-only folder): supply them with Replace Component (a file from ComfyUI's "
                "model folders) or Load Checkpoint"
            )
        return bundle

    def config_overrides(self, values: Mapping[str, Any], label: str) -> dict[str, dict[str, Any]]:
        """Component settings set on the node (component -> config key -> value)."""
        overrides: dict[str, dict[str, Any]] = {}
        for socket in self.plan.config:
            value = values.get(socket.name)
            check_finite(label, socket.name, value)
            if value is not None:
                overrides.setdefault(socket.component, {})[socket.key] = value
        return overrides

    def set_inputs(self, state: PipelineState, values: Mapping[str, Any], label: str) -> None:
        """Each input's value comes from its socket or widget, else the incoming state, else the
        parameter's default; a required one that has none is refused naming it."""
        for name, value in self.plan.fixed.items():
            state.set(name, value)
        for socket in self.plan.inputs:
            raw = values.get(socket.name)
            check_value(label, socket.name, socket.spec, raw)
            if raw is not None and not _is_unset(raw, socket.spec.unset):
                value = socket.spec.to_block(raw, socket.param) if socket.spec.to_block else raw
                state.set(socket.param.name, value, socket.param.kwargs_type)
            elif self.plan.checks_required and state.get(socket.param.name) is None and socket.param.required:
                raise NodeInputError(
                    f"{label}: block {self.plan.block_name} needs input '{socket.name}'"
                    + (f" (parameter '{socket.param.name}')" if socket.name != socket.param.name else "")
                    + ": connect or set it, or provide it in the incoming state"
                )

    def run_block(self, pipeline: ModularPipeline, state: PipelineState, label: str) -> PipelineState:
        try:
            _, state = self.plan.block(pipeline, state)
        except Exception as error:
            if _is_interrupt(error):
                raise
            if isinstance(error, torch.OutOfMemoryError):
                # Unwrapped, so ComfyUI's out-of-memory handling (unload every model, the OOM tip) runs.
                logger.error("%s: block %s ran out of memory", label, self.plan.block_name)
                raise
            unset = [s.name for s in self.plan.inputs if state.get(s.param.name) is None and s.param.default is None]
            hint = f" (inputs without a value: {', '.join(unset)})" if unset else ""
            raise BlockExecutionError(
                f"{label}: block {self.plan.block_name} failed: {type(error).__name__}: {error}{hint}"
            ) from error
        return state

    def output_values(self, state: PipelineState, pipeline: ModularPipeline) -> list[Any]:
        """One value per output socket in ComfyUI's types; AUDIO gets its sample rate, and decoded
        video frames also go out as a VIDEO (with the frame rate and the block's audio)."""
        outputs, audio = [], None
        for socket in self.plan.outputs:
            value = state.get(socket.name)
            value = socket.spec.from_block(value, socket.param) if socket.spec.from_block else value
            if socket.spec.io_type == AUDIO and value is not None:
                value = audio = to_comfy_audio(value, find_sample_rate(state, pipeline, self.media))
            outputs.append(value)
        if self.plan.video_output is not None:
            frames = outputs[self.plan.video_output]
            fps = find_frame_rate(state, self.media)
            outputs.append(to_comfy_video(frames, fps, audio) if frames is not None else None)
        return outputs


def check_value(node_label: str, name: str, spec: SocketSpec, value: Any) -> None:
    """A value ComfyUI's own validation lets through: a non-finite number, or (ComfyUI 0.3.75 does
    not check a V3 dropdown's value) a value that is not one of a dropdown's options."""
    check_finite(node_label, name, value)
    choices = spec.options.get("options") if spec.io_type == COMBO else None
    if choices is not None and value is not None and value not in choices:
        raise NodeInputError(f"{node_label}: input '{name}' is {value!r}; give one of {choices}")


def check_finite(node_label: str, name: str, value: Any) -> None:
    """NaN passes ComfyUI's min/max checks (every comparison with it is false) and would run to a
    black image; infinity is refused the same way."""
    if isinstance(value, float) and not math.isfinite(value):
        raise NodeInputError(f"{node_label}: input '{name}' is {value}; give a finite number")


def _is_unset(value: Any, unset: Any) -> bool:
    return unset is not None and type(value) is type(unset) and value == unset


def _is_interrupt(error: BaseException) -> bool:
    # ComfyUI's InterruptProcessingException (an Exception in 0.3.75, a BaseException later) must
    # reach the executor untouched so the prompt is reported as interrupted, not failed.
    return type(error).__name__ == "InterruptProcessingException"
