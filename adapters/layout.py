"""A node's schema as plain data (`NodeLayout`), and the V3 `io.Schema` built from it.

Every block node's schema goes through a layout: `node_layout` computes it from the block's plan
(`SocketLayout.from_spec` for each socket), and a layout read back from JSON (the catalog snapshot)
gives the same schema without importing or planning the block, so a large catalog registers fast and
a changed schema shows up as a changed layout. The layout holds exactly what ComfyUI shows and
saves: ids, types, widget options and their order, tooltips, outputs.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field
from typing import Any

from comfy_api.latest import io

from .plan import COMPONENTS_SOCKET, STATE_SOCKET, NodePlan
from .socket_types import AUDIO, COMBO, COMPONENTS, IMAGE, MASK, STATE, VIDEO
from .spec import SocketSpec

WIDGET = "widget"  # an INT/FLOAT/STRING/BOOLEAN widget with a default
SOCKET = "socket"  # a link-only input (for the widget types: force_input)
OUTPUT_SUFFIX = "_out"  # ComfyUI 0.3.75 rejects an id used for both an input and an output
VIDEO_SOCKET = "video"  # the VIDEO output beside decoded frames

STATE_TOOLTIP = (
    "Pipeline state from the previous step. Inputs left unconnected are taken from it; "
    "this node never changes it, it outputs a new one."
)
COMPONENTS_TOOLTIP = "Loaded model components (from a components loader). Models are shared, never modified."
STATE_OUT_TOOLTIP = "The pipeline state after this block: the incoming values plus everything this block produced."
VIDEO_TOOLTIP = "The decoded frames as a video (with the frame rate, and the sound when the model makes one)."


@functools.cache
def custom_type(io_type: str) -> type:
    """ComfyUI's `io.Custom(name)` builds new classes on every call (about 0.1 ms each, which
    added up to a third of a second at start-up over all nodes): one per type name is enough."""
    return io.Custom(io_type)


_WIDGETS = {"INT": io.Int, "FLOAT": io.Float, "STRING": io.String, "BOOLEAN": io.Boolean}
# ComfyUI's own types where they mean the same thing.
_CORE_TYPES = {**_WIDGETS, COMBO: io.Combo, IMAGE: io.Image, MASK: io.Mask, AUDIO: io.Audio, VIDEO: io.Video}


def comfy_type(io_type: str) -> Any:
    return _CORE_TYPES.get(io_type) or custom_type(io_type)


def _widget_keywords(options: dict[str, Any]) -> dict[str, Any]:
    """A widget's options as V3 keywords (a slider's display mode is ComfyUI's enum)."""
    if "display_mode" in options:
        return {**options, "display_mode": io.NumberDisplay(options["display_mode"])}
    return dict(options)


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

    @classmethod
    def from_spec(cls, name: str, spec: SocketSpec, optional: bool) -> SocketLayout:
        """An input: a widget when the spec is one (`SocketSpec.is_widget`), else a link-only socket."""
        if spec.is_widget:
            return cls(
                name, spec.io_type, kind=WIDGET, optional=optional, options=dict(spec.options), tooltip=spec.tooltip
            )
        return cls(name, spec.io_type, kind=SOCKET, optional=optional, tooltip=spec.tooltip)

    @classmethod
    def output(cls, name: str, io_type: str, tooltip: str | None) -> SocketLayout:
        return cls(name + OUTPUT_SUFFIX, io_type, display_name=name, tooltip=tooltip)

    def as_input(self) -> io.Input:
        input_class = comfy_type(self.io_type).Input
        if self.kind == WIDGET:
            return input_class(self.id, optional=self.optional, tooltip=self.tooltip, **_widget_keywords(self.options))
        if self.io_type in _WIDGETS:  # a link-only input of a widget type
            return input_class(self.id, optional=self.optional, tooltip=self.tooltip, force_input=True)
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
            node_id=data["node_id"],
            display_name=data["display_name"],
            category=data["category"],
            description=data["description"],
            inputs=tuple(SocketLayout(**item) for item in data["inputs"]),
            outputs=tuple(SocketLayout(**item) for item in data["outputs"]),
        )


def node_layout(plan: NodePlan, *, node_id: str, display_name: str, category: str, description: str) -> NodeLayout:
    """A block node's layout: the state socket, the components socket when its block has components,
    the component settings, the block's inputs; the state, one output per block output, and a VIDEO
    beside decoded frames."""
    inputs = [SocketLayout(STATE_SOCKET, STATE, tooltip=STATE_TOOLTIP)]
    if plan.needs_components:
        inputs.append(SocketLayout(COMPONENTS_SOCKET, COMPONENTS, optional=False, tooltip=COMPONENTS_TOOLTIP))
    inputs += [SocketLayout.from_spec(socket.name, socket.spec, optional=True) for socket in plan.config]
    inputs += [SocketLayout.from_spec(socket.name, socket.spec, not socket.is_required) for socket in plan.inputs]
    outputs = [SocketLayout(STATE_SOCKET + OUTPUT_SUFFIX, STATE, display_name="state", tooltip=STATE_OUT_TOOLTIP)]
    outputs += [SocketLayout.output(socket.name, socket.spec.io_type, socket.spec.tooltip) for socket in plan.outputs]
    if plan.video_output is not None:
        outputs.append(SocketLayout.output(VIDEO_SOCKET, VIDEO, VIDEO_TOOLTIP))
    return NodeLayout(
        node_id=node_id,
        display_name=display_name,
        category=category,
        description=description,
        inputs=tuple(inputs),
        outputs=tuple(outputs),
    )
