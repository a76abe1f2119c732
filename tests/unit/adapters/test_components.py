"""The components socket: models shared by every node, schedulers and guiders copied per run and
carried downstream in the state, component settings applied to the copies."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from comfyui_modular_diffusers.adapters.components import (
    EXECUTION_COMPONENTS_KEY,
    ComponentsBundle,
    carry_components,
    prepare_components,
)
from diffusers.modular_pipelines import ModularPipeline, PipelineState
from diffusers.modular_pipelines.stable_diffusion_xl import StableDiffusionXLAutoBlocks


@pytest.fixture(scope="module")
def bundle(tiny_model) -> ComponentsBundle:
    pipeline = ModularPipeline.from_pretrained(str(tiny_model))
    pipeline.load_components(dtype=torch.float32)
    return ComponentsBundle.from_pipeline(pipeline, "tiny-sdxl", family="stable_diffusion_xl")


def denoise_pipeline():
    return StableDiffusionXLAutoBlocks().sub_blocks["denoise"].init_pipeline()


def test_every_module_gets_a_patcher_and_the_bundle_names_its_source(bundle):
    assert set(bundle.patchers) == {"unet", "vae", "text_encoder", "text_encoder_2"}
    assert bundle.patchers["unet"].model.module is bundle.get("unet")
    assert repr(bundle).startswith("ComponentsBundle(tiny-sdxl: ")


def test_models_are_shared_and_execution_components_copied(bundle):
    pipeline = denoise_pipeline()
    scoped = prepare_components(pipeline, bundle, PipelineState(), {"guider": {"guidance_scale": 7.5}})
    assert pipeline.unet is bundle.get("unet")  # the same weights
    assert {"scheduler", "guider"} <= set(scoped) and "unet" not in scoped
    assert pipeline.scheduler is scoped["scheduler"] and scoped["scheduler"] is not bundle.get("scheduler")
    assert type(scoped["scheduler"]) is type(bundle.get("scheduler"))
    assert scoped["guider"].guidance_scale == 7.5


def test_undeclared_models_are_attached_but_never_loaded(bundle):
    """A block may read a model it does not declare (a text encoder step that takes the denoiser's dtype):
    the node's pipeline has the bundle's other models and tokenizers as attributes, outside its components."""
    pipeline = StableDiffusionXLAutoBlocks().sub_blocks["text_encoder"].init_pipeline()
    assert "unet" not in pipeline.component_names
    prepare_components(pipeline, bundle, PipelineState(), {})
    assert pipeline.unet is bundle.get("unet") and pipeline.vae is bundle.get("vae")
    assert "unet" not in pipeline.component_names and "unet" not in pipeline.components
    assert pipeline.text_encoder is bundle.get("text_encoder")
    assert not hasattr(denoise_pipeline(), "text_encoder")  # nothing outlives the node's own pipeline


def test_a_guider_shipped_off_is_switched_on_by_a_scale():
    pipeline = denoise_pipeline()
    off = type(pipeline.guider).from_config(pipeline.guider.config, enabled=False)
    pipeline.update_components(guider=off)
    scoped = prepare_components(pipeline, None, PipelineState(), {"guider": {"guidance_scale": 3.0}})
    assert scoped["guider"].config.enabled is True and scoped["guider"].guidance_scale == 3.0


def test_carried_copies_win_over_the_bundle_and_travel_on(bundle):
    upstream = denoise_pipeline()
    first = prepare_components(upstream, bundle, PipelineState(), {})
    state = PipelineState()
    carry_components(state, first)
    assert state.get(EXECUTION_COMPONENTS_KEY) == first
    downstream = denoise_pipeline()
    second = prepare_components(downstream, bundle, state, {})
    assert type(second["scheduler"]) is type(first["scheduler"]) and second["scheduler"] is not first["scheduler"]
    carry_components(state, {"extra": 1})
    assert set(state.get(EXECUTION_COMPONENTS_KEY)) == {*first, "extra"}


def test_the_bundle_is_sized_by_its_weights():
    module = torch.nn.Linear(16, 8)
    pipeline = SimpleNamespace(components={"a": module, "b": module, "scheduler": object()})
    bundle = ComponentsBundle(pipeline, "x")
    tensors = bundle._comfy_cache_tensors()
    assert sum(t.numel() * t.element_size() for t in tensors) == (16 * 8 + 8) * 4  # shared modules once
