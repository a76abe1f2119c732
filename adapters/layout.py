"""A node's schema as plain data (`NodeLayout`), and the V3 `io.Schema` built from it.

Every block node's schema goes through a layout: `factory.make_block_node` computes it from the
block's plan, and a layout read back from JSON (the catalog snapshot) gives the same schema without
importing or planning the block, so a large catalog registers fast and a changed schema shows up as
a changed layout. The layout holds exactly what ComfyUI shows and saves: ids, types, widget options
and their order, tooltips, outputs.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field
from typing import Any

from comfy_api.latest import io

from .names import AUDIO, IMAGE, MASK, VIDEO

WIDGET = "widget"  # an INT/FLOAT/STRING/BOOLEAN widget with a default
SOCKET = "socket"  # a link-only input (for the widget types: force_input)


@functools.cache
def custom_type(io_type: str) -> type:
    """ComfyUI's `io.Custom(name)` builds new classes on every call (about 0.1 ms each, which
    added up to a third of a second at start-up over all nodes): one per type name is enough."""
    return io.Custom(io_type)


_WIDGETS = {"INT": io.Int, "FLOAT": io.Float, "STRING": io.String, "BOOLEAN": io.Boolean}
# ComfyUI's own types where they mean the same thing.
_CORE_TYPES = {**_WIDGETS, IMAGE: io.Image, MASK: io.Mask, AUDIO: io.Audio, VIDEO: io.Video}


def comfy_type(io_type: str) -> Any:
    return _CORE_TYPES.get(io_type) or custom_type(io_type)


@dataclass(frozen=True)
class SocketLayout:
    """One input or output. `kind` (inputs) is WIDGET or SOCKET; `options` are a widget's V3
    keyword arguments (default, min, max, step, multiline, ...)."""

    id: str
    io_type: str
    kind: str = SOCKET
    optional: bool = True
    options: dict[str, Any] = field(default_factory=dict)
    tooltip: str | None = None
    display_name: str | None = None

    def as_input(self) -> io.Input:
        input_class = comfy_type(self.io_type).Input
        if self.io_type in _WIDGETS:
            extra = dict(self.options) if self.kind == WIDGET else {"force_input": True}
            return input_class(self.id, optional=self.optional, tooltip=self.tooltip, **extra)
        return input_class(self.id, optional=self.optional, tooltip=self.tooltip)

    def as_output(self) -> io.Output:
        return comfy_type(self.io_type).Output(self.id, display_name=self.display_name, tooltip=self.tooltip)


@dataclass(frozen=True)
class NodeLayout:
    node_id: str
    display_name: str
    category: str
    description: str
    inputs: tuple[SocketLayout, ...]
    outputs: tuple[SocketLayout, ...]

    def schema(self, deprecated: bool = False) -> io.Schema:
        """The V3 schema; `deprecated` hides the node from search (kept for saved workflows)."""
        return io.Schema(
            node_id=self.node_id,
            display_name=self.display_name,
            category=self.category,
            description=self.description,
            inputs=[socket.as_input() for socket in self.inputs],
            outputs=[socket.as_output() for socket in self.outputs],
            hidden=[io.Hidden.unique_id],
            is_deprecated=deprecated,
        )

    def saved_shape(self) -> tuple[tuple[tuple[str, str, str], ...], tuple[tuple[str, str], ...]]:
        """What a saved canvas workflow depends on: widget values are saved by position and links by
        slot index, so the inputs' ids, types and kinds in order and the outputs' ids and types in order.
        (Tooltips, descriptions, defaults and bounds can change without breaking a saved file.)"""
        return (
            tuple((socket.id, socket.io_type, socket.kind) for socket in self.inputs),
            tuple((socket.id, socket.io_type) for socket in self.outputs),
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("inputs", "outputs"):  # leave out fields at their default: a shorter, readable file
            data[key] = [{k: v for k, v in item.items() if v not in (None, {}) and (k, v) != ("kind", SOCKET)}
                         for item in data[key]]  # fmt: skip
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NodeLayout:
        return cls(
            data["node_id"],
            data["display_name"],
            data["category"],
            data["description"],
            tuple(SocketLayout(**item) for item in data["inputs"]),
            tuple(SocketLayout(**item) for item in data["outputs"]),
        )
