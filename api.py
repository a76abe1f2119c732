"""The public API of Modular Diffusers for other custom-node packs: turn your own diffusers
`ModularPipelineBlocks` into ComfyUI nodes through this pack's adapter.

How another pack gets this module: docs/other-packs.md (a copyable helper, `modular_diffusers_api()`,
that works whichever pack ComfyUI loads first). Never import the pack's other modules (`adapters.*`,
`nodes.*`): they change without notice.

The contract. Everything in `__all__` is stable:

- `BlockNodeDefinition` (a frozen dataclass; pass every field after the first four by keyword) and
  `make_block_node(definition) -> type[io.ComfyNode]`: the node class to return from your
  `ComfyExtension.get_node_list()`. The node forks the incoming pipeline state, runs the block under
  ComfyUI's model management (with progress, interrupt and previews for loops) and outputs the new
  state plus one socket per output. Fields are only added, always optional.
- `SocketMapping`, `DEFAULT_MAPPING` and `NameRule`: how a block's inputs become widgets and sockets;
  extend the default with `DEFAULT_MAPPING.extended({"name": NameRule(...)})`. `SHOW_TYPED` and
  `SHOW_COMMON`, the values of `BlockNodeDefinition.socket_policy` (API version 2): which inputs a node
  without an `inputs` list shows: every input a node can feed (SHOW_TYPED, the default), or only
  widgets, tensors, images and masks (SHOW_COMMON, the pack's generated nodes). Block authors' widget
  hints in `InputParam.metadata["mellon"]` (diffusers' Mellon hints: slider, dropdown, min/max/step,
  textbox, seed, checkbox) are honoured.
- `MediaDefaults`: a node's video frame rate and audio sample rate when neither state nor components
  give one.
- `STATE` / `COMPONENTS` (the socket type names, `"MDIFF_STATE"` / `"MDIFF_COMPONENTS"`), `StateType` /
  `ComponentsType` (the matching `io.Custom` types, for hand-written V3 nodes: `StateType.Input(...)`),
  and `ComponentsBundle`, the value on a components socket (read it, never change it: it is shared and
  cached; `bundle.get("vae")`, `bundle.pipeline`, `bundle.family`).
- `versioned_nodes(node, previous_layouts)` and `NodeLayout`: keep canvas workflows saved with an
  earlier shape of one of your nodes loading after you change it (a widget added, reordered or removed,
  or the node renamed). Record every released node's `node.LAYOUT.to_json()`; when a node's
  `LAYOUT.saved_shape()` changes, pass the earlier layouts (`NodeLayout.from_json`) and return the
  nodes this gives beside the new one. Each earlier shape stays a hidden node that runs the new one
  with its values matched by name; this pack's web extension loads saved nodes as the shape they were
  saved with (docs/other-packs.md, "Changing a released node").
- `API_VERSION`: grows by one with every addition to this list or to the fields above; a pack that
  needs an addition checks `api.API_VERSION >= N`. Nothing here is removed or changes meaning within a
  major version of the pack.

Not part of the contract: the widgets and tooltips the default mapping picks for a given parameter
(they improve between releases; pin them with `inputs=`, a mapping of your own or `NameRule`s when
your released nodes must keep their widgets), and anything not listed above.

Your node ids are yours: use a prefix of your own (never `MDiff_`), and never change an id or the
order of a node's widgets once released (saved workflows refer to both).
"""

from __future__ import annotations

from .adapters.components import ComponentsBundle
from .adapters.factory import BlockNodeDefinition, ComponentsType, StateType, make_block_node
from .adapters.layout import NodeLayout
from .adapters.media import MediaDefaults
from .adapters.socket_types import COMPONENTS, STATE
from .adapters.sockets import DEFAULT_MAPPING, SHOW_COMMON, SHOW_TYPED, SocketMapping
from .adapters.spec import NameRule
from .nodes import SCHEMA_VERSIONS

versioned_nodes = SCHEMA_VERSIONS.versioned_nodes

API_VERSION = 2

__all__ = [
    "API_VERSION",
    "BlockNodeDefinition",
    "COMPONENTS",
    "ComponentsBundle",
    "ComponentsType",
    "DEFAULT_MAPPING",
    "MediaDefaults",
    "NameRule",
    "NodeLayout",
    "SHOW_COMMON",
    "SHOW_TYPED",
    "STATE",
    "SocketMapping",
    "StateType",
    "make_block_node",
    "versioned_nodes",
]
