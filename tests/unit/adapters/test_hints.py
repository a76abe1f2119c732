"""Block authors' Mellon widget hints (`InputParam.metadata["mellon"]`) as ComfyUI widgets."""

from __future__ import annotations

import pytest
import torch
from comfyui_modular_diffusers.adapters.sockets import DEFAULT_MAPPING
from diffusers.modular_pipelines import InputParam
from diffusers.modular_pipelines.mellon_node_utils import MellonParam


def spec(name, hint, **param):
    return DEFAULT_MAPPING.input_socket(InputParam(name, metadata={"mellon": hint}, **param))


def test_a_slider_with_bounds():
    result = spec("scale", MellonParam.Input.slider("scale", default=1.0, min=0.0, max=2.0, step=0.05))
    assert result.io_type == "FLOAT" and result.is_widget
    assert {k: result.options[k] for k in ("default", "min", "max", "step", "display_mode")} == {
        "default": 1.0,
        "min": 0.0,
        "max": 2.0,
        "step": 0.05,
        "display_mode": "slider",
    }


def test_a_slider_without_bounds_keeps_the_mappings():
    # MellonParam.Input.slider without min/max gives min == max == default: no range to use.
    result = spec("steps", MellonParam.Input.slider("steps", default=4), type_hint=int, default=4)
    assert result.options["display_mode"] == "slider"
    assert result.options["min"] < 4 < result.options["max"]
    named = spec("strength", "slider", type_hint=float, default=0.5)
    assert named.options["display_mode"] == "slider" and named.options["default"] == 0.5


def test_a_dropdown_of_options():
    result = spec("mode", MellonParam.Input.dropdown("mode", options=["fast", "slow"], default="slow"))
    assert (result.io_type, result.options) == ("COMBO", {"options": ["fast", "slow"], "default": "slow"})
    assert result.is_widget
    first = spec("mode", {"options": [1, 2, 3]}, type_hint=int, default=9)
    assert first.options["default"] == 1  # a default that is not an option falls back to the first
    assert spec("image", {"options": ["a", "b"]}, type_hint=torch.Tensor).io_type == "MDIFF_TENSOR"


def test_textbox_seed_and_checkbox():
    assert spec("caption", "textbox", default="").options["multiline"] is True
    seed = spec("noise_seed", MellonParam.Input.seed("noise_seed"), type_hint=int, default=0)
    assert seed.options["control_after_generate"] is True and seed.options["max"] == 4294967295
    check = spec("flip", MellonParam.Input.checkbox("flip", default=True))
    assert check.io_type == "BOOLEAN" and check.options["default"] is True


def test_a_hint_types_an_untyped_parameter_but_never_retypes_a_typed_one():
    assert spec("amount", MellonParam.Input.number("amount", default=0.25)).io_type == "FLOAT"
    typed = spec("count", MellonParam.Input.number("count", default=0.5), type_hint=int, default=2)
    assert typed.io_type == "INT" and typed.options["default"] == 2  # a float default does not fit an INT


@pytest.mark.parametrize("metadata", [None, {}, {"mellon": None}, {"mellon": "model"}, {"other": "slider"}])
def test_no_hint_changes_nothing(metadata):
    plain = DEFAULT_MAPPING.input_socket(InputParam("steps", type_hint=int, default=4))
    assert DEFAULT_MAPPING.input_socket(InputParam("steps", type_hint=int, default=4, metadata=metadata)) == plain
