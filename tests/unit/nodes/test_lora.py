"""Load LoRA (Diffusers) on tiny SDXL and Flux: LoRA files generated here in two formats each (diffusers/PEFT
and kohya), applied through ComfyUI's patcher, compared with plain diffusers' `load_lora_weights` +
`set_adapters` at the same strength.

Bound: the denoiser's output with the LoRA differs from diffusers' (PEFT layers) by at most 1e-4 (float32;
PEFT adds B(A x) at run time, ComfyUI patches W + s B A into the weight: the same sum in another order).
Text encoders: plain diffusers cannot apply a text-encoder LoRA here (transformers 5 needs peft >= 0.22; PyPI's
newest is 0.21.2), so their patched weights are checked against W + strength * alpha / rank * up @ down read
from the file itself.
"""

from __future__ import annotations

import logging

import comfy.model_management as mm
import pytest
import safetensors.torch
import torch
from comfyui_modular_diffusers.adapters.components import ComponentsBundle
from comfyui_modular_diffusers.nodes.lora import LoraLoader
from diffusers.modular_pipelines import ModularPipeline

STRENGTH = 0.7


pytestmark = pytest.mark.usefixtures("loras_folder")


def pipeline(folder) -> ModularPipeline:
    pipe = ModularPipeline.from_pretrained(str(folder))
    pipe.load_components(dtype=torch.float32)
    return pipe


@pytest.fixture(scope="module")
def sdxl(tiny_model):
    return ComponentsBundle.from_pipeline(pipeline(tiny_model), "tiny-sdxl", family="stable_diffusion_xl")


@pytest.fixture(scope="module")
def flux(tiny_models):
    return ComponentsBundle.from_pipeline(pipeline(tiny_models["tiny-flux"]), "tiny-flux", family="flux")


def apply(bundle, lora_name, strength_model=STRENGTH, strength_text_encoder=STRENGTH):
    (patched,) = LoraLoader.execute(bundle, lora_name, strength_model, strength_text_encoder).args
    return patched


def unet_out(bundle) -> torch.Tensor:
    mm.load_models_gpu([bundle.patchers["unet"]])
    generator = torch.Generator().manual_seed(0)
    sample, text = torch.randn(1, 4, 8, 8, generator=generator), torch.randn(1, 7, 64, generator=generator)
    added = {
        "text_embeds": torch.randn(1, 32, generator=generator),
        "time_ids": torch.randn(1, 6, generator=generator),
    }
    with torch.no_grad():
        return bundle.get("unet")(sample, 500, text, added_cond_kwargs=added).sample


def flux_out(bundle, transformer=None) -> torch.Tensor:
    if transformer is None:
        mm.load_models_gpu([bundle.patchers["transformer"]])
        transformer = bundle.get("transformer")
    generator = torch.Generator().manual_seed(0)
    inputs = {
        "hidden_states": torch.randn(1, 16, 64, generator=generator),
        "encoder_hidden_states": torch.randn(1, 8, 32, generator=generator),
        "pooled_projections": torch.randn(1, 32, generator=generator),
        "timestep": torch.tensor([0.5]),
        "guidance": torch.tensor([3.5]),
        "img_ids": torch.zeros(16, 3),
        "txt_ids": torch.zeros(8, 3),
    }
    with torch.no_grad():
        return transformer(**inputs).sample


def diffusers_reference(folder, file, prefixes, strength=STRENGTH) -> ModularPipeline:
    """Plain diffusers with the file's denoiser part loaded through PEFT at `strength`."""
    pipe = pipeline(folder)
    part = {k: v for k, v in safetensors.torch.load_file(str(file)).items() if k.startswith(prefixes)}
    pipe.load_lora_weights(part, adapter_name="test")
    pipe.set_adapters(["test"], [strength])
    return pipe


@pytest.mark.parametrize(("lora", "prefixes"), [("peft", ("unet.",)), ("kohya", ("lora_unet_",))])
def test_sdxl_unet_lora_matches_diffusers(sdxl, loras, tiny_model, lora, prefixes):
    patched = apply(sdxl, f"tiny-sdxl-lora-{lora}.safetensors")
    ours = unet_out(patched)
    reference = diffusers_reference(tiny_model, loras / f"tiny-sdxl-lora-{lora}.safetensors", prefixes)
    with torch.no_grad():
        generator = torch.Generator().manual_seed(0)
        sample, text = torch.randn(1, 4, 8, 8, generator=generator), torch.randn(1, 7, 64, generator=generator)
        added = {
            "text_embeds": torch.randn(1, 32, generator=generator),
            "time_ids": torch.randn(1, 6, generator=generator),
        }
        expected = reference.unet(sample, 500, text, added_cond_kwargs=added).sample
    base = unet_out(sdxl)
    assert (ours - base).abs().max() > 1e-2  # the LoRA changes the output
    assert torch.allclose(ours, expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize(("lora", "alpha"), [("peft", None), ("kohya", 1.0)])
def test_sdxl_text_encoder_lora_is_the_lora_sum(sdxl, loras, lora, alpha):
    patched = apply(sdxl, f"tiny-sdxl-lora-{lora}.safetensors", strength_model=0.0)
    assert patched.patchers["unet"] is sdxl.patchers["unet"]  # strength 0: the UNet is left out
    text_encoder = sdxl.get("text_encoder")
    layer = text_encoder.encoder.layers[0].self_attn.q_proj
    before = layer.weight.detach().clone()
    tensors = safetensors.torch.load_file(str(loras / f"tiny-sdxl-lora-{lora}.safetensors"))
    if lora == "peft":
        down = tensors["text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_A.weight"]
        up = tensors["text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_B.weight"]
    else:
        down = tensors["lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight"]
        up = tensors["lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight"]
    scale = (alpha if alpha is not None else down.shape[0]) / down.shape[0]
    mm.load_models_gpu([patched.patchers["text_encoder"]])
    assert torch.allclose(layer.weight, before + STRENGTH * scale * (up @ down), atol=1e-5, rtol=0)
    mm.load_models_gpu([sdxl.patchers["text_encoder"]])
    assert torch.equal(layer.weight, before)  # the unpatched components restore the weights


@pytest.mark.parametrize(("lora", "prefixes"), [("peft", ("transformer.",)), ("kohya", ("lora_unet_",))])
def test_flux_transformer_lora_matches_diffusers(flux, loras, tiny_models, lora, prefixes):
    ours = flux_out(apply(flux, f"tiny-flux-lora-{lora}.safetensors"))
    reference = diffusers_reference(tiny_models["tiny-flux"], loras / f"tiny-flux-lora-{lora}.safetensors", prefixes)
    expected = flux_out(None, reference.transformer)
    assert (ours - flux_out(flux)).abs().max() > 1e-2
    assert torch.allclose(ours, expected, atol=1e-4, rtol=0)


def test_strength_zero_is_no_lora_and_the_input_bundle_is_untouched(sdxl):
    base = unet_out(sdxl)
    zero = apply(sdxl, "tiny-sdxl-lora-peft.safetensors", 0.0, 0.0)
    assert torch.equal(unet_out(zero), base)
    with_lora = unet_out(apply(sdxl, "tiny-sdxl-lora-peft.safetensors"))
    assert not torch.equal(with_lora, base)
    assert torch.equal(unet_out(sdxl), base)  # loading the input bundle again: the original weights


def test_two_loras_stacked_are_the_sum(sdxl):
    layer = sdxl.get("unet").down_blocks[1].attentions[0].transformer_blocks[0].attn1.to_q
    mm.load_models_gpu([sdxl.patchers["unet"]])
    base = layer.weight.detach().clone()
    deltas = []
    for name, strength in (("peft", 0.5), ("kohya", 0.3)):
        mm.load_models_gpu([apply(sdxl, f"tiny-sdxl-lora-{name}.safetensors", strength, 0.0).patchers["unet"]])
        deltas.append(layer.weight.detach().clone() - base)
    stacked = apply(
        apply(sdxl, "tiny-sdxl-lora-peft.safetensors", 0.5, 0.0), "tiny-sdxl-lora-kohya.safetensors", 0.3, 0.0
    )
    mm.load_models_gpu([stacked.patchers["unet"]])
    assert torch.allclose(layer.weight - base, deltas[0] + deltas[1], atol=1e-6, rtol=0)


def test_another_familys_lora_is_refused_naming_both(sdxl):
    with pytest.raises(
        ValueError,
        match=r"tiny-flux-lora-peft.safetensors has no weights for this "
        r"'stable_diffusion_xl' model \(tiny-sdxl\); it looks like a LoRA for Flux",
    ):
        apply(sdxl, "tiny-flux-lora-peft.safetensors")


def test_keys_that_match_nothing_are_listed_once(sdxl, loras, caplog):
    tensors = safetensors.torch.load_file(str(loras / "tiny-sdxl-lora-peft.safetensors"))
    tensors["unet.no_such_block.to_q.lora_A.weight"] = torch.zeros(4, 8)
    tensors["unet.no_such_block.to_q.lora_B.weight"] = torch.zeros(8, 4)
    safetensors.torch.save_file(tensors, str(loras / "extra-keys.safetensors"))
    with caplog.at_level(logging.WARNING):
        apply(sdxl, "extra-keys.safetensors")
    lines = [r.getMessage() for r in caplog.records if "match no module" in r.getMessage()]
    assert len(lines) == 1 and "2 keys of extra-keys.safetensors" in lines[0] and "no_such_block" in lines[0]


def test_a_loha_file_is_refused_naming_it(sdxl, loras):
    """diffusers' readers take no LoHa / LoKr keys (`hada_*`, `lokr_*`), so the pack cannot map them."""
    name = "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q"
    tensors = {f"{name}.hada_w{i}_{ab}": torch.ones(2, 8) for i in (1, 2) for ab in ("a", "b")}
    safetensors.torch.save_file({**tensors, f"{name}.alpha": torch.tensor(2.0)}, str(loras / "loha.safetensors"))
    with pytest.raises(
        ValueError, match=r"loha.safetensors cannot be read as a LoRA: .* LoHa / LoKr weights \(hada_\* keys\)"
    ):
        apply(sdxl, "loha.safetensors")
