"""Reading blocks of every kind into sockets (`NodePlan.from_block`), without running them."""

from __future__ import annotations

import pytest
import torch
from comfyui_modular_diffusers.adapters.plan import NodePlan
from comfyui_modular_diffusers.adapters.run import BlockRun, NodeInputError
from comfyui_modular_diffusers.adapters.sockets import SHOW_COMMON, SHOW_TYPED
from comfyui_modular_diffusers.adapters.spec import NameRule
from comfyui_modular_diffusers.nodes import examples
from diffusers.modular_pipelines import InputParam, ModularPipelineBlocks, OutputParam
from toy_blocks import SHARED_LATENTS, MaybeScale, Scale, ScaleOrNegate, SharedScale


class Offset(ModularPipelineBlocks):
    """A user's block with a typed optional scalar, an untyped value and plumbing."""

    @property
    def inputs(self):
        return [
            InputParam("latents", type_hint=torch.Tensor),
            InputParam("offset", type_hint=int | None, default=None),
            InputParam("anything"),
            InputParam("output_type", type_hint=str, default="pt"),
            InputParam("cross_attention_kwargs", type_hint=dict),
        ]

    @property
    def intermediate_outputs(self):
        return [OutputParam("latents", type_hint=torch.Tensor), OutputParam("extra")]


def test_inputs_of_a_conditional_block_include_an_undeclared_trigger():
    plan = NodePlan.from_block(ScaleOrNegate())
    assert [(s.name, s.trigger) for s in plan.inputs] == [("latents", False), ("factor", False), ("negate", True)]


def test_a_plan_keeps_required_when_diffusers_rewrites_shared_params():
    plan = NodePlan.from_block(SharedScale())
    try:
        _ = MaybeScale().inputs  # diffusers marks the shared `latents` not required (the branch may be skipped)
        assert SHARED_LATENTS.required is False, "premise: the param object is shared and rewritten"
        assert plan.inputs[0].param.required is True
        with pytest.raises(NodeInputError, match="needs input 'latents'"):
            BlockRun(node_id="T", display_name="T", plan=plan)({}, "1")
    finally:
        SHARED_LATENTS.required = True


def test_users_blocks_show_every_input_a_node_can_feed():
    plan = NodePlan.from_block(Offset(), policy=SHOW_TYPED)
    assert {s.name: (s.spec.io_type, s.spec.is_widget) for s in plan.inputs} == {
        "latents": ("MDIFF_TENSOR", False),
        "offset": ("INT", False),  # an optional INT socket: settable by a linked Int or over the API
    }
    assert [s.name for s in plan.outputs] == ["latents"]  # untyped outputs stay in the state


def test_the_catalog_policy_shows_less():
    plan = NodePlan.from_block(Offset(), policy=SHOW_COMMON)
    assert [s.name for s in plan.inputs] == ["latents"]


def test_an_input_list_picks_and_orders_the_sockets():
    plan = NodePlan.from_block(Offset(), exposed=["offset", "anything", "latents", "missing"])
    assert [s.name for s in plan.inputs] == ["offset", "anything", "latents"]
    assert NodePlan.from_block(Offset(), output_names=["extra"]).outputs[0].name == "extra"


def test_fixed_inputs_get_no_socket():
    plan = NodePlan.from_block(Scale(), fixed={"factor": 3.0})
    assert [s.name for s in plan.inputs] == ["latents"] and plan.fixed == {"factor": 3.0}


def test_component_settings_become_widgets_and_clashes_are_refused():
    rule = NameRule("FLOAT", {"default": 5.0}, name="guidance_scale_2")
    plan = NodePlan.from_block(Scale(), component_inputs={"guider_2": {"guidance_scale": rule}})
    (config,) = plan.config
    assert (config.component, config.key, config.name, config.spec.is_widget) == (
        "guider_2",
        "guidance_scale",
        "guidance_scale_2",
        True,
    )
    with pytest.raises(ValueError, match=r"component inputs \['factor'\] clash"):
        NodePlan.from_block(Scale(), component_inputs={"guider": {"factor": NameRule("FLOAT", {"default": 1.0})}})


def test_sequential_and_loop_examples():
    plan = NodePlan.from_block(examples.input_then_image_encoder(), policy=SHOW_COMMON)
    assert [s.name for s in plan.inputs] == ["prompt", "num_images_per_prompt", "image"]
    loop = examples.LoopWrapper.from_blocks_dict({"a": examples.LoopBlock(), "b": examples.LoopBlock()})
    plan = NodePlan.from_block(loop, examples.EXAMPLE_MAPPING, policy=SHOW_COMMON)
    assert {s.name: s.spec.io_type for s in plan.inputs} == {"num_steps": "INT", "x": "INT"}


def test_decoded_video_frames_also_go_out_as_video():
    class Decode(ModularPipelineBlocks):
        @property
        def intermediate_outputs(self):
            return [OutputParam("audio", type_hint=torch.Tensor), OutputParam("videos")]

    plan = NodePlan.from_block(Decode())
    assert [(s.name, s.spec.io_type) for s in plan.outputs] == [("audio", "AUDIO"), ("videos", "IMAGE")]
    assert plan.video_output == 1
