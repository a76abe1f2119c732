"""Turn a `ModularPipelineBlocks` into a ComfyUI node class (the V3 `io.ComfyNode` API).

Why V3 (docs/node-api.md has the long form): it is where ComfyUI adds node features, its schema is
plain data that is easy to generate, and the same code runs on ComfyUI 0.3.75 and on the newest
releases as long as we stay inside the keywords both know. The 0.3.75 pitfalls we avoid: `execute`
always returns `io.NodeOutput`, nothing relies on `ComfyExtension.on_load`, input and output ids are
disjoint, and generated classes derive from `io.ComfyNode` itself, never from a registered node.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from comfy_api.latest import io
from diffusers.modular_pipelines import InputParam, ModularPipelineBlocks, PipelineState

from .components import ComponentsBundle, carry_components, prepare_components
from .layout import SOCKET, WIDGET, NodeLayout, SocketLayout, custom_type
from .loops import LoopReporter, instrument_loops, reporting, tap_schedulers
from .media import VIDEO_SOCKET, MediaDefaults, frame_rate, sample_rate, to_comfy_audio, to_comfy_video
from .names import AUDIO, VIDEO, VIDEO_OUTPUT_NAMES, WIDGET_TYPES
from .plan import COMPONENTS_SOCKET, STATE_SOCKET, NodeInputError, NodePlan, check_finite
from .sockets import COMPONENTS, DEFAULT_MAPPING, IMAGE, STATE, NameRule, SocketMapping, SocketSpec

logger = logging.getLogger(__name__)

StateType = custom_type(STATE)
ComponentsType = custom_type(COMPONENTS)

STATE_TOOLTIP = (
    "Pipeline state from the previous step. Inputs left unconnected are taken from it; "
    "this node never changes it, it outputs a new one."
)
COMPONENTS_TOOLTIP = "Loaded model components (from a components loader). Models are shared, never modified."
STATE_OUT_TOOLTIP = "The pipeline state after this block: the incoming values plus everything this block produced."
VIDEO_TOOLTIP = "The decoded frames as a video (with the frame rate, and the sound when the model makes one)."
OUTPUT_SUFFIX = "_out"  # ComfyUI 0.3.75 rejects an id used for both an input and an output


@dataclass(frozen=True)
class BlockNodeDefinition:
    """Everything needed to make one node: a stable id (saved workflows refer to it, never change
    it), the block, and how it is shown.

    `inputs` / `outputs` limit the sockets to these parameter names (None: all; the rest still flows
    through the state); `fixed_inputs` sets parameters without a socket; `component_inputs` adds
    widgets that configure an execution-scoped component (component name -> config key -> rule),
    e.g. a guider's `guidance_scale`. `family` (a diffusers `modular_pipelines` folder name) makes
    the node refuse a components bundle of another family. `media` gives the frame rate and sample
    rate to use when neither the state nor the components say (see `adapters.media`).
    """

    node_id: str
    block: ModularPipelineBlocks
    display_name: str
    category: str
    description: str | None = None
    mapping: SocketMapping = field(default=DEFAULT_MAPPING)
    inputs: Sequence[str] | None = None
    outputs: Sequence[str] | None = None
    fixed_inputs: Mapping[str, Any] = field(default_factory=dict)
    component_inputs: Mapping[str, Mapping[str, NameRule]] = field(default_factory=dict)
    family: str | None = None
    media: MediaDefaults = field(default_factory=MediaDefaults)


def make_block_node(definition: BlockNodeDefinition) -> type[io.ComfyNode]:
    """A V3 node class that runs `definition.block` on the pipeline-state socket."""
    # The node owns a private copy: blocks are mutable specs, and its loops get instrumented.
    block = copy.deepcopy(definition.block)
    has_loops = instrument_loops(block) > 0
    plan = NodePlan.from_block(
        block,
        definition.mapping,
        exposed=definition.inputs,
        fixed=definition.fixed_inputs,
        output_names=definition.outputs,
    )
    description = definition.description or block_description(block)
    # (component, config key, widget); the widget is named after the key unless its rule renames it
    # (a second guider's `guidance_scale` shown as `guidance_scale_2`).
    config_sockets = [
        (component, key, definition.mapping.extended({key: rule}).input_socket(InputParam(key)))
        for component, rules in definition.component_inputs.items()
        for key, rule in rules.items()
    ]
    config_names = [spec.name or key for _, key, spec in config_sockets]
    clashes = {name for name in config_names if config_names.count(name) > 1}
    clashes |= set(config_names) & {socket.name for socket in plan.inputs}
    if clashes:
        raise ValueError(f"{definition.node_id}: component inputs {sorted(clashes)} clash with block inputs")

    video_source = next(
        (
            i
            for i, socket in enumerate(plan.outputs)
            if socket.name in VIDEO_OUTPUT_NAMES and socket.spec.io_type == IMAGE
        ),
        None,
    )

    inputs = [SocketLayout(STATE_SOCKET, STATE, tooltip=STATE_TOOLTIP)]
    if plan.needs_components:
        inputs.append(SocketLayout(COMPONENTS_SOCKET, COMPONENTS, optional=False, tooltip=COMPONENTS_TOOLTIP))
    inputs += [_input_layout(spec.name or key, spec, optional=True) for _, key, spec in config_sockets]
    inputs += [_input_layout(socket.name, socket.spec, optional=not socket.is_required) for socket in plan.inputs]
    outputs = [SocketLayout(STATE_SOCKET + OUTPUT_SUFFIX, STATE, display_name="state", tooltip=STATE_OUT_TOOLTIP)]
    outputs += [
        SocketLayout(
            socket.name + OUTPUT_SUFFIX, socket.spec.io_type, display_name=socket.name, tooltip=socket.spec.tooltip
        )
        for socket in plan.outputs
    ]
    if video_source is not None:
        outputs.append(
            SocketLayout(VIDEO_SOCKET + OUTPUT_SUFFIX, VIDEO, display_name=VIDEO_SOCKET, tooltip=VIDEO_TOOLTIP)
        )
    layout = NodeLayout(
        definition.node_id, definition.display_name, definition.category, description, tuple(inputs), tuple(outputs)
    )

    def define_schema(cls) -> io.Schema:
        return layout.schema()

    def execute(cls, **values: Any) -> io.NodeOutput:
        node_id = cls.hidden.unique_id
        label = f"node {node_id} '{definition.display_name}' ({definition.node_id})"
        # A pipeline of its own per run (under a millisecond): no component outlives the run in it.
        pipeline = block.init_pipeline()
        bundle: ComponentsBundle | None = values.get(COMPONENTS_SOCKET)
        if bundle is not None and definition.family and bundle.family and bundle.family != definition.family:
            raise NodeInputError(
                f"{label}: its components input holds a '{bundle.family}' model ({bundle.source}), but this node "
                f"runs '{definition.family}' blocks; connect a Load Diffusers Components node with a "
                f"'{definition.family}' model"
            )
        overrides: dict[str, dict[str, Any]] = {}
        for component, key, spec in config_sockets:
            check_finite(label, spec.name or key, values.get(spec.name or key))
            if values.get(spec.name or key) is not None:
                overrides.setdefault(component, {})[key] = values[spec.name or key]
        scoped: dict[str, Any] = {}

        reporter = LoopReporter(node_id, bundle)

        def before_run(state: PipelineState) -> None:
            scoped.update(prepare_components(pipeline, bundle, state, overrides))
            if has_loops:
                tap_schedulers(reporter, scoped.values())
            if bundle is not None:
                bundle.load(pipeline.component_names)

        with reporting(reporter) if has_loops else contextlib.nullcontext():
            state, outputs = plan.run(values, pipeline=pipeline, node_label=label, before_run=before_run)
        carry_components(state, scoped)
        outputs = _media_outputs(plan, outputs, state, pipeline, definition.media, video_source)
        return io.NodeOutput(state, *outputs)

    return type(
        definition.node_id,
        (io.ComfyNode,),
        {
            "define_schema": classmethod(define_schema),
            "execute": classmethod(execute),
            "PLAN": plan,
            "LAYOUT": layout,
            "__doc__": description,
        },
    )


def block_description(block: ModularPipelineBlocks) -> str:
    """The block's description; some diffusers loop bases leave the property unimplemented."""
    try:
        return (block.description or "").strip()
    except NotImplementedError:
        return ""


def make_deferred_node(layout: NodeLayout, build: Callable[[], type[io.ComfyNode]]) -> type[io.ComfyNode]:
    """A node class whose schema comes from `layout` (no block is imported or planned) and whose
    block node is built by `build()` when it first runs. The built node's layout must equal
    `layout`; when it does not (a stale snapshot), the node says so in the log and still runs."""
    built: list[type[io.ComfyNode]] = []

    def define_schema(cls) -> io.Schema:
        return layout.schema()

    def execute(cls, **values: Any) -> io.NodeOutput:
        if not built:
            node = build()
            if node.LAYOUT != layout:
                logger.warning(
                    "%s: the node's schema differs from the catalog snapshot (regenerate it with "
                    "scripts/snapshot_catalog.py); running the block as it is now",
                    layout.node_id,
                )
            built.append(node)
        return built[0].execute.__func__(cls, **values)

    return type(
        layout.node_id,
        (io.ComfyNode,),
        {
            "define_schema": classmethod(define_schema),
            "execute": classmethod(execute),
            "LAYOUT": layout,
            "__doc__": layout.description,
        },
    )


def _media_outputs(
    plan: NodePlan,
    outputs: list[Any],
    state: PipelineState,
    pipeline: Any,
    media: MediaDefaults,
    video_source: int | None,
) -> list[Any]:
    """AUDIO outputs get their sample rate; a decoded video also goes out as a VIDEO."""
    outputs = list(outputs)
    audio = None
    for index, socket in enumerate(plan.outputs):
        if socket.spec.io_type == AUDIO and outputs[index] is not None:
            outputs[index] = audio = to_comfy_audio(outputs[index], sample_rate(state, pipeline, media))
    if video_source is not None:
        frames = outputs[video_source]
        video = to_comfy_video(frames, frame_rate(state, media), audio) if frames is not None else None
        outputs.append(video)
    return outputs


def _input_layout(name: str, spec: SocketSpec, optional: bool) -> SocketLayout:
    if spec.io_type in WIDGET_TYPES and spec.is_widget:
        return SocketLayout(name, spec.io_type, WIDGET, optional, dict(spec.options), spec.tooltip)
    return SocketLayout(name, spec.io_type, SOCKET, optional, tooltip=spec.tooltip)


def _output_layout(name: str, io_type: str, tooltip: str | None) -> SocketLayout:
    return SocketLayout(name + OUTPUT_SUFFIX, io_type, display_name=name, tooltip=tooltip)


__all__ = [
    "BlockNodeDefinition",
    "make_deferred_node",
    "block_description",
    "ComponentsType",
    "StateType",
    "make_block_node",
]
