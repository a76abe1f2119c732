"""Opt-in batched guidance (adapters/batched_guidance.py, `MDIFF_BATCHED_GUIDANCE=1`) on the real tiny SDXL
and Z-Image pipelines, installed the way a node installs it (`prepare_components`): one denoiser call per
step instead of two, latents close to the unbatched run, the fallback (guidance off) bit-identical, and
the shared model left without hooks.

Measured on the CI machine (4 steps, 64x64, latents): largest difference batched vs unbatched 6e-5 for
SDXL (latents up to 28.7) and 1.6e-3 for Z-Image (latents up to 11.4; its captions of different lengths
are padded in one batch); the tolerances below leave a margin of ~6x-16x over that.
"""

from __future__ import annotations

import copy
from pathlib import Path

import comfy.model_management as mm
import pytest
import torch
from comfyui_modular_diffusers.adapters import batched_guidance
from comfyui_modular_diffusers.adapters.batched_guidance import batch_guider, is_batched, merge_batches
from comfyui_modular_diffusers.adapters.components import ComponentsBundle, prepare_components
from diffusers import ClassifierFreeGuidance, SkipLayerGuidance
from diffusers.modular_pipelines import BlockState, ModularPipeline, PipelineState
from tiny_checks import block_network
from tiny_models import DEFAULT_MODEL, TINY_MODELS

STEPS = 4
# family fixture -> (the denoiser component, the tolerance on latents, what the family needs to guide)
FAMILIES = {
    DEFAULT_MODEL: ("unet", 1e-3, {}),
    "tiny-z-image": ("transformer", 1e-2, {"guidance_scale": 5.0}),  # ships its guider switched off
}


def _disable_progress_bars(blocks) -> None:
    if hasattr(blocks, "set_progress_bar_config"):
        blocks.set_progress_bar_config(disable=True)
    for sub_block in getattr(blocks, "sub_blocks", {}).values():
        _disable_progress_bars(sub_block)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> dict[str, ComponentsBundle]:
    root: Path = tmp_path_factory.mktemp("batched")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is as fast, and far faster on a busy machine
    loaded = {}
    with pytest.MonkeyPatch.context() as patch:
        block_network(patch)
        for name in FAMILIES:
            pipeline = ModularPipeline.from_pretrained(str(TINY_MODELS[name](root / name)))
            pipeline.load_components(dtype=torch.float32)
            loaded[name] = ComponentsBundle.from_pipeline(pipeline, name)
    yield loaded
    torch.set_num_threads(threads)


def _run(
    bundle: ComponentsBundle,
    monkeypatch: pytest.MonkeyPatch,
    *,
    enabled: bool,
    guider: dict,
    **kwargs,
) -> tuple[torch.Tensor, int, torch.nn.Module]:
    """Text2image latents as a node runs it (its own pipeline, `prepare_components`), and the number of
    denoiser calls."""
    monkeypatch.setattr(batched_guidance, "MODE", batched_guidance.ON if enabled else batched_guidance.OFF)
    pipeline = bundle.pipeline.blocks.get_workflow("text2image").init_pipeline()
    scoped = prepare_components(pipeline, bundle, PipelineState(), {"guider": guider} if guider else {})
    assert is_batched(scoped["guider"]) is enabled
    _disable_progress_bars(pipeline.blocks)
    model = getattr(pipeline, FAMILIES[bundle.source][0])
    calls = []
    counter = model.register_forward_pre_hook(lambda module, args: calls.append(1))
    try:
        latents = pipeline(
            prompt="a cat",
            negative_prompt="blurry, a dog in the rain",  # another length than the prompt
            num_inference_steps=STEPS,
            height=64,
            width=64,
            generator=torch.Generator().manual_seed(0),
            output="latents",
            **kwargs,
        )
    finally:
        counter.remove()
    return latents, len(calls), model


@pytest.mark.parametrize("per_prompt", [1, 2])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_batched_is_close_with_one_call_per_step(bundles, monkeypatch, no_network, family, per_prompt):
    bundle = bundles[family]
    _, tolerance, guider = FAMILIES[family]
    off, off_calls, _ = _run(bundle, monkeypatch, enabled=False, guider=guider, num_images_per_prompt=per_prompt)
    on, on_calls, model = _run(bundle, monkeypatch, enabled=True, guider=guider, num_images_per_prompt=per_prompt)
    assert off.shape[0] == per_prompt
    assert (off_calls, on_calls) == (2 * STEPS, STEPS)
    torch.testing.assert_close(on, off, rtol=0, atol=tolerance)
    # the shared model is as it was: no hook left, no forward replaced
    assert not model._forward_pre_hooks and "forward" not in vars(model)
    # and the default stays plain diffusers, bit for bit
    again, _, _ = _run(bundle, monkeypatch, enabled=False, guider=guider, num_images_per_prompt=per_prompt)
    assert torch.equal(again, off)


@pytest.mark.parametrize(
    ("family", "guider"),
    [(DEFAULT_MODEL, {"guidance_scale": 1.0}), ("tiny-z-image", {})],  # scale 1; Z-Image's guider switched off
    ids=["scale-1", "guider-disabled"],
)
def test_without_guidance_it_is_plain_diffusers(bundles, monkeypatch, no_network, family, guider):
    off, off_calls, _ = _run(bundles[family], monkeypatch, enabled=False, guider=guider)
    on, on_calls, model = _run(bundles[family], monkeypatch, enabled=True, guider=guider)
    assert off_calls == on_calls == STEPS
    assert torch.equal(on, off)
    assert not model._forward_pre_hooks


def _cfg_batches(guider, cond: torch.Tensor, uncond: torch.Tensor) -> list[BlockState]:
    guider.set_state(step=0, num_inference_steps=STEPS, timestep=torch.tensor(999))
    return guider.prepare_inputs({"encoder_hidden_states": (cond, uncond)})


def test_fields_that_cannot_be_merged_fall_back():
    guider = batch_guider(ClassifierFreeGuidance(guidance_scale=5.0))
    cond = torch.randn(1, 7, 4)
    assert len(_cfg_batches(guider, cond, torch.randn(1, 9, 4))) == 2  # another sequence length
    assert len(_cfg_batches(guider, cond, torch.randn(1, 7, 4))) == 1
    # fields that disagree on the batch size, and non-tensor fields
    assert merge_batches(BlockState(a=cond, b=torch.zeros(2, 3)), BlockState(a=cond, b=torch.zeros(2, 3))) is None
    assert merge_batches(BlockState(a=cond, b="x"), BlockState(a=cond, b="x")) is None
    merged, size = merge_batches(BlockState(a=cond, b=None, c=[cond[0]]), BlockState(a=-cond, b=None, c=[cond[0]]))
    assert size == 1 and merged.b is None and len(merged.c) == 2
    assert torch.equal(merged.a, torch.cat([cond, -cond]))
    # a guider that changes the model per pass (layer skipping) always runs its passes one by one
    assert not batch_guider(SkipLayerGuidance(skip_layer_guidance_layers=[0]))._mdiff_mergeable


def test_guider_stays_a_guider_and_a_stale_hook_does_nothing():
    guider = batch_guider(ClassifierFreeGuidance(guidance_scale=5.0))
    assert isinstance(guider, ClassifierFreeGuidance) and type(guider).__name__ == "ClassifierFreeGuidance"
    for copied in (copy.deepcopy(guider), type(guider).from_config(guider.config, guidance_scale=2.0)):
        assert is_batched(copied) and dict(copied.config, guidance_scale=5.0) == dict(guider.config)

    model = torch.nn.Linear(4, 4)
    cond, uncond = torch.randn(3, 4), torch.randn(3, 4)
    (merged,) = _cfg_batches(guider, cond, uncond)
    guider.prepare_models(model)
    prediction = model(torch.zeros(3, 4))  # not the merged call (no input of 2B = 6): left alone
    assert prediction.shape == (3, 4) and not model._forward_pre_hooks

    (merged,) = _cfg_batches(guider, cond, uncond)
    guider.prepare_models(model)
    merged.noise_pred = model(merged.encoder_hidden_states)
    guider.cleanup_models(model)
    expected = ClassifierFreeGuidance(guidance_scale=5.0)
    expected.set_state(step=0, num_inference_steps=STEPS, timestep=torch.tensor(999))
    torch.testing.assert_close(guider([merged]).pred, expected.forward(model(cond), model(uncond)).pred)

    # a run that fails between prepare_models and cleanup_models leaves a hook that never acts
    _cfg_batches(guider, cond, uncond)
    guider.prepare_models(model)
    assert model._forward_pre_hooks
    assert model(torch.zeros(3, 4)).shape == (3, 4) and not model._forward_pre_hooks


def test_a_pipeline_with_a_controlnet_runs_unbatched(monkeypatch):
    """A ControlNet is called per pass before the hooked model: such a node gets the plain guider, also
    when a batched one is carried in from upstream."""
    monkeypatch.setattr(batched_guidance, "MODE", batched_guidance.ON)
    guider = batched_guidance.batch_guider_if_enabled(ClassifierFreeGuidance(), ["unet", "guider"])
    assert batched_guidance.is_batched(guider)
    plain = batched_guidance.batch_guider_if_enabled(guider, ["unet", "controlnet", "guider"])
    assert plain is guider and type(plain) is ClassifierFreeGuidance
    monkeypatch.setattr(batched_guidance, "MODE", batched_guidance.OFF)
    assert not batched_guidance.is_batched(batched_guidance.batch_guider_if_enabled(ClassifierFreeGuidance()))


def test_the_default_batches_proven_families_only(monkeypatch):
    monkeypatch.setattr(batched_guidance, "MODE", batched_guidance.AUTO)
    assert is_batched(batched_guidance.batch_guider_if_enabled(ClassifierFreeGuidance(), ["unet"], proven=True))
    assert not is_batched(batched_guidance.batch_guider_if_enabled(ClassifierFreeGuidance(), ["unet"], proven=False))
    assert [batched_guidance.mode_from(v) for v in (None, "", "auto", "1", "On", "0", "off")] == [
        "auto",
        "auto",
        "auto",
        "on",
        "on",
        "off",
        "off",
    ]


def test_too_little_free_memory_runs_the_passes_one_by_one(bundles, monkeypatch, no_network):
    """ComfyUI's rule for its own cond batches: the merged call's estimated need (x1.5) must fit the
    device's free memory; with a budget far below it every step makes two calls, as without batching."""
    bundle = bundles[DEFAULT_MODEL]
    off, _, _ = _run(bundle, monkeypatch, enabled=False, guider={})
    monkeypatch.setattr(mm, "get_free_memory", lambda device=None, torch_free_too=False: 1024)
    small, calls, _ = _run(bundle, monkeypatch, enabled=True, guider={})
    assert calls == 2 * STEPS and torch.equal(small, off)
    monkeypatch.setattr(mm, "get_free_memory", lambda device=None, torch_free_too=False: 64 * 1024**3)
    _, calls, _ = _run(bundle, monkeypatch, enabled=True, guider={})
    assert calls == STEPS
