"""The pack's own nodes for the pipeline state: show what a state holds, and set values in it.

Set Pipeline State Values is the generic way to reach a value no node shows (the catalog nodes show
the common inputs; everything a block reads can also come from the incoming state): a value written
here is read by every downstream block that takes a parameter of that name.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

from comfy_api.latest import io

from ..adapters.factory import StateType
from ..adapters.run import NodeInputError
from ..adapters.state import describe_state, fork_state, format_description
from .naming import ROOT_CATEGORY

CATEGORY = f"{ROOT_CATEGORY}/state"
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
VALUES_TOOLTIP = (
    "One value per line, as `name = value`: a number, true/false, null, a quoted string, a list or "
    "a dict (JSON or Python syntax); anything else is taken as text. Example: max_sequence_length = 256"
)


class ShowState(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MDiff_ShowState",
            display_name="Show Pipeline State",
            category=CATEGORY,
            description="Lists the values of a pipeline state: tensors by shape and dtype, other values as they are.",
            inputs=[StateType.Input("state", tooltip="The pipeline state to show.")],
            outputs=[],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, state) -> io.NodeOutput:
        description = describe_state(state)
        # "text" is what the canvas shows; "state" is the structured form for API clients and tests.
        return io.NodeOutput(ui={"text": [format_description(description)], "state": [description]})


class SetStateValues(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MDiff_SetStateValues",
            display_name="Set Pipeline State Values",
            category=CATEGORY,
            description="Writes named values into a pipeline state (a new one: the incoming state is not "
            "changed), for inputs that no node shows as a widget or socket. Every block downstream that "
            "takes a parameter of that name reads it, unless its node sets it itself.",
            inputs=[
                StateType.Input("state", optional=True, tooltip="The state to add to (none: an empty one)."),
                io.String.Input("values", default="", multiline=True, optional=True, tooltip=VALUES_TOOLTIP),
                io.String.Input("name", default="", optional=True, tooltip="The name for `value` (empty: unused)."),
                io.AnyType.Input("value", optional=True, tooltip="A linked value of any type (a tensor, image, ...)."),
            ],
            outputs=[StateType.Output("state_out", display_name="state", tooltip="The state with the values set.")],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def execute(cls, state=None, values: str = "", name: str = "", value: Any = None) -> io.NodeOutput:
        label = f"node {cls.hidden.unique_id if cls.hidden else '?'} 'Set Pipeline State Values'"
        new = fork_state(state)
        for key, item in parse_values(values or "", label).items():
            new.set(key, item)
        if name.strip():
            new.set(_checked_name(name.strip(), label, "name"), value)
        return io.NodeOutput(new)


def parse_values(text: str, label: str) -> dict[str, Any]:
    """`name = value` lines -> {name: value}; blank lines and lines starting with # are skipped."""
    parsed: dict[str, Any] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.strip().startswith("#"):
            continue
        key, equals, raw = line.partition("=")
        if not equals:
            raise NodeInputError(f"{label}: values line {number} ({line.strip()!r}) is not `name = value`")
        parsed[_checked_name(key.strip(), label, f"values line {number}")] = literal(raw.strip())
    return parsed


def literal(text: str) -> Any:
    """JSON, else a Python literal, else the text itself."""
    for parse in (json.loads, ast.literal_eval):
        try:
            return parse(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
    return text


def _checked_name(key: str, label: str, where: str) -> str:
    if not NAME.fullmatch(key):
        raise NodeInputError(f"{label}: {where}: {key!r} is not a parameter name (letters, digits and _)")
    return key
