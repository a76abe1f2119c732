"""The pack's pipeline-state nodes: Show Pipeline State and Set Pipeline State Values."""

from __future__ import annotations

import pytest
import torch
from comfyui_modular_diffusers.adapters.run import NodeInputError
from comfyui_modular_diffusers.nodes.state import SetStateValues, ShowState, literal, parse_values
from diffusers.modular_pipelines import PipelineState


@pytest.mark.parametrize(
    ("text", "value"),
    [("256", 256), ("0.5", 0.5), ("true", True), ("null", None), ('"np"', "np"), ("(16, 16)", (16, 16))]
    + [("[1, 2]", [1, 2]), ('{"a": 1}', {"a": 1}), ("True", True), ("np", "np"), ("a photo", "a photo")],
)
def test_values_are_json_then_python_literals_then_text(text, value):
    assert literal(text) == value and type(literal(text)) is type(value)


def test_lines_become_named_values():
    text = "# a comment\nclip_skip = 1\n\n  crops_coords_top_left=(16, 16)  \nnote = a = b"
    assert parse_values(text, "n") == {"clip_skip": 1, "crops_coords_top_left": (16, 16), "note": "a = b"}


@pytest.mark.parametrize(("text", "why"), [("no equals", "is not `name = value`"), ("2x = 1", "is not a parameter")])
def test_bad_lines_are_refused_by_number(text, why):
    with pytest.raises(NodeInputError, match=f"node 9: values line 2.*{why}"):
        parse_values("ok = 1\n" + text, "node 9")


def test_set_values_forks_the_state_and_show_state_lists_it():
    incoming = PipelineState()
    incoming.set("latents", torch.zeros(1, 4, 8, 8))
    (state,) = SetStateValues.execute(state=incoming, values="clip_skip = 2", name="image", value="x").args
    assert (
        state.get("clip_skip") == 2
        and state.get("image") == "x"
        and torch.equal(state.get("latents"), incoming.get("latents"))
    )
    assert incoming.get("clip_skip") is None  # the incoming state is unchanged
    shown = ShowState.execute(state=state).ui
    assert "clip_skip: int = 2" in shown["text"][0] and shown["state"][0]["latents"]["shape"] == [1, 4, 8, 8]
