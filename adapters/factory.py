"""Turn a `ModularPipelineBlocks` into a ComfyUI node class (the V3 `io.ComfyNode` API).

Why V3 (docs/node-api.md has the long form): it is where ComfyUI adds node features, its schema is
plain data that is easy to generate, and the same code runs on ComfyUI 0.3.75 and on the newest
releases as long as we stay inside the keywords both know. The 0.3.75 pitfalls we avoid: `execute`
always returns `io.NodeOutput`, nothing relies on `ComfyExtension.on_load`, input and output ids are
disjoint, and generated classes derive from `io.ComfyNode` itself, never from a registered node.

Every class the adapter makes comes from `node_class`: a schema, and a plain function `run(values,
unique_id) -> outputs` kept on the class as `RUN`, which other node classes (deferred, deprecated) call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from comfy_api.latest import io
from diffusers.modular_pipelines import ModularPipelineBlocks

from .layout import NodeLayout, custom_type, node_layout
from .media import MediaDefaults
from .plan import NodePlan
from .run import BlockRun, private_copy
from .socket_types import COMPONENTS, STATE
from .sockets import DEFAULT_MAPPING, SHOW_TYPED, SocketMapping
from .spec import NameRule

logger = logging.getLogger(__name__)

StateType = custom_type(STATE)
ComponentsType = custom_type(COMPONENTS)

Run = Callable[[dict[str, Any], Any], Sequence[Any]]  # (input values, node's unique id) -> outputs


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
    `socket_policy` is what a node without an `inputs` list shows (`sockets.shows_input`): every input
    a node can feed (SHOW_TYPED, for your own blocks), or the catalog's shorter SHOW_COMMON.
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
    socket_policy: str = SHOW_TYPED


def make_block_node(definition: BlockNodeDefinition) -> type[io.ComfyNode]:
    """A V3 node class that runs `definition.block` on the pipeline-state socket."""
    block = private_copy(definition.block)
    plan = NodePlan.from_block(
        block,
        definition.mapping,
        exposed=definition.inputs,
        fixed=definition.fixed_inputs,
        output_names=definition.outputs,
        component_inputs=definition.component_inputs,
        policy=definition.socket_policy,
    )
    layout = node_layout(
        plan,
        node_id=definition.node_id,
        display_name=definition.display_name,
        category=definition.category,
        description=definition.description or block_description(block),
    )
    run = BlockRun(
        plan=plan,
        node_id=definition.node_id,
        display_name=definition.display_name,
        family=definition.family,
        media=definition.media,
    )
    return node_class(layout.node_id, layout.schema, run, LAYOUT=layout, PLAN=plan, __doc__=layout.description)


def make_deferred_node(layout: NodeLayout, build: Callable[[], type[io.ComfyNode]]) -> type[io.ComfyNode]:
    """A node class whose schema comes from `layout` (no block is imported or planned) and whose
    block node is built by `build()` when it first runs. The built node's layout must equal
    `layout`; when it does not (a stale snapshot), the node says so in the log and still runs."""
    built: list[type[io.ComfyNode]] = []

    def run(values: dict[str, Any], unique_id: Any) -> Sequence[Any]:
        if not built:
            node = build()
            if node.LAYOUT != layout:
                logger.warning(
                    "%s: the node's schema differs from the catalog snapshot (regenerate it with "
                    "scripts/snapshot_catalog.py); running the block as it is now",
                    layout.node_id,
                )
            built.append(node)
        return built[0].RUN(values, unique_id)

    return node_class(layout.node_id, layout.schema, run, LAYOUT=layout, __doc__=layout.description)


def node_class(node_id: str, schema: Callable[[], io.Schema], run: Run, **attributes: Any) -> type[io.ComfyNode]:
    """A V3 node class named `node_id` whose schema is `schema()` and whose `execute` returns
    `run(values, unique_id)` as its outputs; `attributes` become class attributes (`LAYOUT`, ...)."""

    def define_schema(cls) -> io.Schema:
        return schema()

    def execute(cls, **values: Any) -> io.NodeOutput:
        return io.NodeOutput(*run(values, cls.hidden.unique_id if cls.hidden else None))

    namespace = {
        "define_schema": classmethod(define_schema),
        "execute": classmethod(execute),
        "RUN": staticmethod(run),
    }
    return type(node_id, (io.ComfyNode,), {**namespace, **attributes})


def block_description(block: ModularPipelineBlocks) -> str:
    """The block's description; some diffusers loop bases leave the property unimplemented."""
    try:
        return (block.description or "").strip()
    except NotImplementedError:
        return ""


__all__ = [
    "BlockNodeDefinition",
    "ComponentsType",
    "StateType",
    "block_description",
    "make_block_node",
    "make_deferred_node",
    "node_class",
]
