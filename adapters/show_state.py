"""An output node that shows what a pipeline state holds, on the canvas and in `/history`."""

from __future__ import annotations

from comfy_api.latest import io

from .factory import StateType
from .state import describe_state, format_description


class ShowState(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MDiff_ShowState",
            display_name="Show Pipeline State",
            category="Modular Diffusers/state",
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
