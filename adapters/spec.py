"""How one parameter appears on a node (`SocketSpec`), and what the name table knows of a name (`NameRule`).

A `NameRule` is a partial `SocketSpec`: the fields it sets win over what the parameter's type gives
(`NameRule.over`), the others stay. Both are plain data; `sockets.SocketMapping` decides which apply.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .convert import Converter
from .socket_types import COMBO, WIDGET_TYPES


@dataclass(frozen=True)
class SocketSpec:
    """How one parameter appears on a node.

    `io_type` is a ComfyUI type name. For the widget types (INT, FLOAT, STRING, BOOLEAN, and COMBO)
    `options` holds the widget's keyword arguments (V3 names: default, min, max, step, multiline,
    display_mode, options, ...); a widget type without a default becomes an input-only socket of that
    type. `name` renames the socket (e.g. `generator` is shown as a `seed` widget). `to_block` turns
    the socket's value into the value the block expects; `from_block` does the reverse for outputs.
    `unset` is the widget value that means "not given" (for example an empty prompt): the node then
    takes the value from the incoming state, else the block's default.
    """

    io_type: str
    options: Mapping[str, Any] = field(default_factory=dict)
    name: str | None = None
    to_block: Converter | None = None
    from_block: Converter | None = None
    unset: Any = None
    tooltip: str | None = None

    @property
    def is_widget(self) -> bool:
        """The one place that decides widget or socket: a widget type with a default."""
        return (self.io_type in WIDGET_TYPES or self.io_type == COMBO) and "default" in self.options


@dataclass(frozen=True)
class NameRule(SocketSpec):
    """What the name table knows about a parameter name: its socket type (used when the hint does not
    decide it), and the spec fields to use when the parameter has that type. `tooltip` is a note
    always added (e.g. what an unset value means); `description` stands in for a parameter that has none."""

    description: str | None = None

    def over(self, spec: SocketSpec) -> SocketSpec:
        """`spec` with the fields this rule sets (the rule's `description` is not a spec field)."""
        changes = {
            item.name: getattr(self, item.name)
            for item in dataclasses.fields(SocketSpec)
            if getattr(self, item.name) not in (None, {})
        }
        return dataclasses.replace(spec, **changes)
