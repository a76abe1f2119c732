"""The socket mapping rules, without ComfyUI."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from comfyui_modular_diffusers.adapters import socket_types as sockets
from comfyui_modular_diffusers.adapters.convert import to_comfy_image
from comfyui_modular_diffusers.adapters.sockets import (
    DEFAULT_MAPPING,
    SHOW_COMMON,
    SHOW_TYPED,
    shows_input,
    shows_output,
    socket_type_for_hint,
)
from comfyui_modular_diffusers.adapters.spec import NameRule, SocketSpec
from diffusers.modular_pipelines import InputParam, OutputParam
from PIL import Image


@pytest.mark.parametrize(
    ("hint", "expected"),
    [
        (int, "INT"),
        (float, "FLOAT"),
        (str, "STRING"),
        (bool, "BOOLEAN"),
        (torch.Tensor, sockets.TENSOR),
        (torch.Tensor | None, sockets.TENSOR),
        (torch.Generator, "INT"),
        (torch.dtype, sockets.DTYPE),
        (Image.Image, "IMAGE"),
        ("PIL.Image", "IMAGE"),
        (Image.Image | list[Image.Image], "IMAGE"),
        (list[Image.Image], "IMAGE"),
        (list[torch.Tensor], sockets.TENSOR + "_LIST"),
        (float | list[float] | torch.Tensor, "FLOAT"),
        (dict[str, Any], "MDIFF_DICT"),
        (None, None),
        (list, None),
        (list[int], None),
        (Any, None),
    ],
)
def test_type_hints(hint, expected):
    assert socket_type_for_hint(hint) == expected


def test_unknown_class_gets_a_namespaced_socket():
    class KVCache:
        pass

    assert socket_type_for_hint(KVCache) == "MDIFF_KVCACHE"


def test_hint_wins_over_name_and_default_keeps_widget():
    spec = DEFAULT_MAPPING.input_socket(InputParam("num_inference_steps", type_hint=int, default=30, description="d"))
    assert spec.io_type == "INT" and spec.is_widget
    assert spec.options["default"] == 30 and spec.options["min"] == 1
    assert spec.tooltip == "d"


def test_name_rule_used_when_hint_missing():
    prompt = DEFAULT_MAPPING.input_socket(InputParam("prompt"))
    assert prompt.io_type == "STRING" and prompt.options["multiline"] is True
    height = DEFAULT_MAPPING.input_socket(InputParam("height"))
    assert height.io_type == "INT" and height.unset == 0 and height.is_widget


def test_default_type_then_generic_socket():
    assert DEFAULT_MAPPING.input_socket(InputParam("scale", default=2.5)).options["default"] == 2.5
    generic = DEFAULT_MAPPING.input_socket(InputParam("mystery"))
    assert generic.io_type == sockets.VALUE and not generic.is_widget


@pytest.mark.parametrize(("default", "step"), [(2.5, 0.01), (0.111, 0.001), (1e-05, 1e-05), (1 / 3, 1e-06)])
def test_a_float_widget_steps_finely_enough_to_keep_its_default(default, step):
    # The frontend rounds a float widget to its step's decimals: 0.111 with a step of 0.01 would run as 0.11.
    assert DEFAULT_MAPPING.input_socket(InputParam("sigma_min", default=default)).options["step"] == step


@pytest.mark.parametrize(("default", "step"), [(1.0, 0.25), (0.5, 0.25), (0.125, 0.001)])
def test_a_coarser_step_is_kept_when_it_holds_the_default(default, step):
    mapping = DEFAULT_MAPPING.extended({"scale": NameRule("FLOAT", {"step": 0.25})})
    assert mapping.input_socket(InputParam("scale", default=default)).options["step"] == step


def test_int_without_default_is_an_input_only_socket():
    spec = DEFAULT_MAPPING.input_socket(InputParam("count", type_hint=int))
    assert spec.io_type == "INT" and not spec.is_widget


def test_generator_becomes_seed_widget_and_fresh_generator():
    spec = DEFAULT_MAPPING.input_socket(InputParam("generator", type_hint=torch.Generator))
    assert spec.name == "seed" and spec.is_widget and spec.options["control_after_generate"] is True
    first = spec.to_block(7, None)
    second = spec.to_block(7, None)
    assert first is not second
    assert torch.equal(torch.randn(3, generator=first), torch.randn(3, generator=second))


def test_list_hinted_string_splits_lines():
    param = InputParam("prompt", type_hint=list)
    spec = DEFAULT_MAPPING.input_socket(param)
    assert spec.to_block("a cat\n\na dog\n", param) == ["a cat", "a dog"]
    plain = InputParam("prompt")
    assert DEFAULT_MAPPING.input_socket(plain).to_block("a cat\na dog", plain) == "a cat\na dog"


def test_image_conversions_round_trip():
    batch = torch.rand(2, 8, 6, 3)
    param = InputParam("image")
    spec = DEFAULT_MAPPING.input_socket(param)
    images = spec.to_block(batch, param)
    assert isinstance(images, list) and images[0].size == (6, 8)
    back = to_comfy_image(images)
    assert back.shape == (2, 8, 6, 3)
    assert torch.allclose(back, batch, atol=1 / 255)
    single = spec.to_block(batch[:1], param)
    assert isinstance(single, Image.Image)
    assert to_comfy_image(np.zeros((1, 4, 4, 3), dtype=np.float32)).shape == (1, 4, 4, 3)
    assert to_comfy_image(torch.zeros(1, 3, 4, 5)).shape == (1, 4, 5, 3)


def test_outputs_use_the_same_rules():
    assert DEFAULT_MAPPING.output_socket(OutputParam("images")).io_type == "IMAGE"
    assert DEFAULT_MAPPING.output_socket(OutputParam("latents", type_hint=torch.Tensor)).io_type == sockets.TENSOR
    assert DEFAULT_MAPPING.output_socket(OutputParam("batch_size")).io_type == "INT"


def test_extended_mapping_leaves_the_default_alone():
    extended = DEFAULT_MAPPING.extended({"num_steps": NameRule("INT", {"default": 10})})
    assert extended.input_socket(InputParam("num_steps")).options["default"] == 10
    assert DEFAULT_MAPPING.input_socket(InputParam("num_steps")).io_type == sockets.VALUE


def test_a_rule_for_another_type_is_ignored_when_the_hint_disagrees():
    # `height` is an INT widget by name; a block that hints it as a tensor gets a tensor socket, and only
    # the rule's description survives.
    spec = DEFAULT_MAPPING.input_socket(InputParam("num_inference_steps", type_hint=torch.Tensor))
    assert spec.io_type == sockets.TENSOR and spec.options == {} and spec.unset is None
    assert spec.tooltip == "Number of denoising steps."


def test_a_name_rule_is_a_partial_spec():
    rule = NameRule("INT", {"default": 0}, unset=0, tooltip="0: off.", description="How many.")
    base = SocketSpec("INT", to_block=int)
    spec = rule.over(base)
    assert type(spec) is SocketSpec and spec.to_block is int  # what the rule leaves unset stays
    assert (spec.options, spec.unset, spec.tooltip) == ({"default": 0}, 0, "0: off.")


@pytest.mark.parametrize(
    ("name", "spec", "common", "typed"),
    [
        ("steps", SocketSpec("INT", {"default": 4}), True, True),
        ("offset", SocketSpec("INT"), False, True),  # a typed optional scalar
        ("latents", SocketSpec(sockets.TENSOR), True, True),
        ("cache", SocketSpec("MDIFF_KVCACHE"), False, True),
        ("anything", SocketSpec(sockets.VALUE), False, False),
        ("options", SocketSpec(sockets.DICT), False, False),
        ("output_type", SocketSpec("STRING", {"default": "pil"}), False, False),  # plumbing
        ("joint_attention_kwargs", SocketSpec(sockets.TENSOR), False, False),
    ],
)
def test_the_show_policies(name, spec, common, typed):
    assert shows_input(name, spec, SHOW_COMMON) is common
    assert shows_input(name, spec, SHOW_TYPED) is typed


def test_a_branch_trigger_is_always_shown():
    assert shows_input("negate", SocketSpec(sockets.VALUE), SHOW_COMMON, trigger=True)


def test_untyped_outputs_stay_in_the_state():
    assert shows_output("latents", SocketSpec(sockets.TENSOR))
    assert not shows_output("extra", SocketSpec(sockets.VALUE))
    assert not shows_output("added_cond_kwargs", SocketSpec(sockets.TENSOR))
