"""A node's schema as data (`NodeLayout`), built from a plan and read back from JSON, and the V3 inputs it gives."""

from __future__ import annotations

from comfy_api.latest import io
from comfyui_modular_diffusers.adapters.layout import SOCKET, WIDGET, NodeLayout, SocketLayout, node_layout
from comfyui_modular_diffusers.adapters.plan import NodePlan
from comfyui_modular_diffusers.adapters.spec import SocketSpec
from toy_blocks import Scale


def test_a_spec_becomes_a_widget_or_a_link_only_socket():
    widget = SocketLayout.from_spec("steps", SocketSpec("INT", {"default": 4, "min": 1}), optional=False)
    assert (widget.kind, widget.optional, widget.options) == (WIDGET, False, {"default": 4, "min": 1})
    socket = SocketLayout.from_spec("offset", SocketSpec("INT", {"min": 0}), optional=True)
    assert (socket.kind, socket.options) == (SOCKET, {})
    assert socket.as_input().as_dict()["forceInput"] is True
    assert widget.as_input().as_dict()["default"] == 4


def test_a_slider_and_a_dropdown_become_comfyuis_own():
    slider = SocketLayout("scale", "FLOAT", WIDGET, options={"default": 0.5, "display_mode": "slider"})
    assert slider.as_input().as_dict()["display"] == "slider"
    combo = SocketLayout("mode", "COMBO", WIDGET, options={"options": ["a", "b"], "default": "b"})
    assert isinstance(combo.as_input(), io.Combo.Input) and combo.as_input().as_dict()["options"] == ["a", "b"]


def test_a_plans_layout_and_its_json_round_trip():
    layout = node_layout(
        NodePlan.from_block(Scale()), node_id="T_Scale", display_name="Scale", category="t", description="d"
    )
    assert [s.id for s in layout.inputs] == ["state", "latents", "factor"]
    assert [s.id for s in layout.outputs] == ["state_out", "latents_out"]
    assert NodeLayout.from_json(layout.to_json()) == layout
    assert layout.saved_shape() == (
        (("state", "MDIFF_STATE", SOCKET), ("latents", "MDIFF_TENSOR", SOCKET), ("factor", "FLOAT", WIDGET)),
        (("state_out", "MDIFF_STATE"), ("latents_out", "MDIFF_TENSOR")),
    )
    assert "kind" not in layout.to_json()["inputs"][0]  # defaults are left out of the file
    assert layout.schema(deprecated=True).is_deprecated
