"""DoRA files through Load LoRA (Diffusers) on tiny SDXL's UNet: PEFT's format (`lora_magnitude_vector`) and
LyCORIS' kohya-named one (`dora_scale`, which diffusers' readers drop with a warning). The reference is ComfyUI
itself: its `comfy.lora.load_lora` + `calculate_weight` on the file's own tensors for one module, i.e. what
ComfyUI does with a DoRA on its own models. (Plain diffusers is no reference for the values: PEFT divides the
magnitude by the norm of the updated weight, ComfyUI's DoRA on the output axis by the norm of the original one.)
"""

from __future__ import annotations

import comfy.lora
import comfy.model_management as mm
import pytest
import safetensors.torch
import torch
from comfyui_modular_diffusers.adapters.components import ComponentsBundle
from comfyui_modular_diffusers.adapters.lora import _carry_dora
from comfyui_modular_diffusers.nodes.lora import LoraLoader
from diffusers.modular_pipelines import ModularPipeline
from tiny_loras import UNET_TARGETS, linears

STRENGTH = 0.7


pytestmark = pytest.mark.usefixtures("loras_folder")


@pytest.fixture(scope="module")
def sdxl(tiny_model):
    pipe = ModularPipeline.from_pretrained(str(tiny_model))
    pipe.load_components(dtype=torch.float32)
    return ComponentsBundle.from_pipeline(pipe, "tiny-sdxl", family="stable_diffusion_xl")


def patched_weight(bundle: ComponentsBundle, path: str, component: str = "unet") -> torch.Tensor:
    mm.load_models_gpu([bundle.patchers[component]])
    return bundle.get(component).get_submodule(path).weight.detach().clone()


def comfyui_weight(weight: torch.Tensor, tensors: dict[str, torch.Tensor], strength: float) -> torch.Tensor:
    """ComfyUI's patch of `weight` from one module's LoRA tensors (`x.<suffix>`)."""
    patches = comfy.lora.load_lora(tensors, {"x": "w"}, log_missing=False)
    return comfy.lora.calculate_weight([(strength, patches["w"], 1.0, None, None)], weight.clone(), "w")


def module_tensors(file_tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {
        f"x{key.removeprefix(prefix)}": value for key, value in file_tensors.items() if key.startswith(f"{prefix}.")
    }


@pytest.fixture(scope="module")
def first_layer(sdxl) -> str:
    return linears(sdxl.get("unet"), UNET_TARGETS)[0][0]


@pytest.mark.parametrize(
    ("component", "prefix", "other"),
    [("unet", "lora_unet_", "text_encoder"), ("text_encoder", "lora_te1_text_model_", "unet")],
)
def test_a_lycoris_dora_is_applied_as_comfyui_applies_it(sdxl, loras, first_layer, component, prefix, other):
    path = first_layer if component == "unet" else "encoder.layers.0.self_attn.q_proj"
    base = patched_weight(sdxl, path, component)
    strengths = (STRENGTH, 0.0) if component == "unet" else (0.0, STRENGTH)
    patched = LoraLoader.execute(sdxl, "tiny-sdxl-lycoris-dora.safetensors", *strengths).args[0]
    assert patched.patchers[other] is sdxl.patchers[other]  # strength 0: the other component is left out
    tensors = safetensors.torch.load_file(str(loras / "tiny-sdxl-lycoris-dora.safetensors"))
    own = module_tensors(tensors, prefix + path.replace(".", "_"))
    assert set(own) == {"x.lora_down.weight", "x.lora_up.weight", "x.alpha", "x.dora_scale"}
    expected = comfyui_weight(base, own, STRENGTH)
    without_dora = comfyui_weight(base, {k: v for k, v in own.items() if k != "x.dora_scale"}, STRENGTH)
    assert (expected - without_dora).abs().max() > 1e-2  # the magnitudes matter
    assert torch.allclose(patched_weight(patched, path, component), expected, atol=1e-6, rtol=0)
    assert torch.equal(patched_weight(sdxl, path, component), base)  # the input bundle: the original weights


def test_a_peft_dora_is_applied_with_its_magnitudes_per_output_row(sdxl, loras, first_layer):
    base = patched_weight(sdxl, first_layer)
    ours = patched_weight(LoraLoader.execute(sdxl, "tiny-sdxl-peft-dora.safetensors", STRENGTH, 0.0).args[0],
                          first_layer)  # fmt: skip
    tensors = safetensors.torch.load_file(str(loras / "tiny-sdxl-peft-dora.safetensors"))
    own = module_tensors(tensors, f"unet.{first_layer}")
    magnitude = own.pop("x.lora_magnitude_vector")
    assert magnitude.shape == (base.shape[0],)
    expected = comfyui_weight(base, {**own, "x.dora_scale": magnitude.reshape(-1, 1)}, STRENGTH)
    assert (expected - comfyui_weight(base, own, STRENGTH)).abs().max() > 1e-2
    assert torch.allclose(ours, expected, atol=1e-6, rtol=0)


def test_a_dora_magnitude_whose_down_weight_several_modules_share_is_not_guessed():
    down, scale = torch.randn(4, 8), torch.rand(16, 1)
    parts = {"transformer": {"a.lora_A.weight": down, "b.lora_A.weight": down.clone(), "c.lora_A.weight": down * 2}}
    assert _carry_dora(parts, {"fused_qkv": (scale, down)}) == set()
    assert _carry_dora(parts, {"c_module": (scale, down * 2)}) == {"c_module"}
    assert parts["transformer"]["c.dora_scale"] is scale
