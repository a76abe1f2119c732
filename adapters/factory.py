"""Turn a `ModularPipelineBlocks` into a ComfyUI node class (the V3 `io.ComfyNode` API).

Why V3 (docs/node-api.md has the long form): it is where ComfyUI adds node features, its schema is
plain data that is easy to generate, and the same code runs on ComfyUI 0.3.75 and on the newest
releases as long as we stay inside the keywords both know. The 0.3.75 pitfalls we avoid: `execute`
always returns `io.NodeOutput`, nothing relies on `ComfyExtension.on_load`, input and output ids are
disjoint, and generated classes derive from `io.ComfyNode` itself, never from a registered node.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from comfy_api.latest import io
from diffusers.modular_pipelines import ModularPipeline, ModularPipelineBlocks

from .plan import COMPONENTS_SOCKET, STATE_SOCKET, InputSocket, NodePlan, OutputSocket
from .sockets import COMPONENTS, DEFAULT_MAPPING, IMAGE, STATE, SocketMapping

StateType = io.Custom(STATE)
ComponentsType = io.Custom(COMPONENTS)

STATE_TOOLTIP = (
    "Pipeline state from the previous step. Inputs left unconnected are taken from it; "
    "this node never changes it, it outputs a new one."
)
STATE_OUT_TOOLTIP = "The pipeline state after this block: the incoming values plus everything this block produced."
OUTPUT_SUFFIX = "_out"  # ComfyUI 0.3.75 rejects an id used for both an input and an output


@dataclass(frozen=True)
class BlockNodeDefinition:
    """Everything needed to make one node: a stable id (saved workflows refer to it, never change
    it), the block, and how it is shown."""

    node_id: str
    block: ModularPipelineBlocks
    display_name: str
    category: str
    description: str | None = None
    mapping: SocketMapping = field(default=DEFAULT_MAPPING)


def make_block_node(definition: BlockNodeDefinition) -> type[io.ComfyNode]:
    """A V3 node class that runs `definition.block` on the pipeline-state socket."""
    # The node owns a private copy: blocks are mutable specs (sub_blocks can be edited).
    block = copy.deepcopy(definition.block)
    plan = NodePlan.from_block(block, definition.mapping)
    description = definition.description or block.description or ""
    pipeline_cache: list[ModularPipeline] = []

    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=definition.node_id,
            display_name=definition.display_name,
            category=definition.category,
            description=description,
            inputs=[StateType.Input(STATE_SOCKET, optional=True, tooltip=STATE_TOOLTIP)]
            + [_schema_input(socket) for socket in plan.inputs],
            outputs=[StateType.Output(STATE_SOCKET + OUTPUT_SUFFIX, display_name="state", tooltip=STATE_OUT_TOOLTIP)]
            + [_schema_output(socket) for socket in plan.outputs],
            hidden=[io.Hidden.unique_id],
        )

    def execute(cls, **values: Any) -> io.NodeOutput:
        label = f"node {cls.hidden.unique_id} '{definition.display_name}' ({definition.node_id})"
        if not pipeline_cache:
            pipeline_cache.append(block.init_pipeline())
        state, outputs = plan.run(values, pipeline=pipeline_cache[0], node_label=label)
        return io.NodeOutput(state, *outputs)

    return type(
        definition.node_id,
        (io.ComfyNode,),
        {
            "define_schema": classmethod(define_schema),
            "execute": classmethod(execute),
            "PLAN": plan,
            "__doc__": description,
        },
    )


def _schema_input(socket: InputSocket) -> io.Input:
    spec = socket.spec
    common: dict[str, Any] = {"optional": not socket.is_required, "tooltip": spec.tooltip}
    widget_class = {"INT": io.Int, "FLOAT": io.Float, "STRING": io.String, "BOOLEAN": io.Boolean}.get(spec.io_type)
    if widget_class is not None:
        if spec.is_widget:
            return widget_class.Input(socket.name, **common, **spec.options)
        return widget_class.Input(socket.name, **common, force_input=True)
    if spec.io_type == IMAGE:
        return io.Image.Input(socket.name, **common)
    return io.Custom(spec.io_type).Input(socket.name, **common)


def _schema_output(socket: OutputSocket) -> io.Output:
    io_type = socket.spec.io_type
    output_class = {"INT": io.Int, "FLOAT": io.Float, "STRING": io.String, "BOOLEAN": io.Boolean, IMAGE: io.Image}
    comfy_type = output_class.get(io_type) or io.Custom(io_type)
    return comfy_type.Output(
        socket.name + OUTPUT_SUFFIX, display_name=socket.name, tooltip=socket.param.description or None
    )


__all__ = ["BlockNodeDefinition", "ComponentsType", "StateType", "make_block_node", "COMPONENTS_SOCKET"]
