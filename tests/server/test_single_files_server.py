"""The weights users have, through a real server: an all-in-one SDXL checkpoint with a config folder (full
and configs-only), Z-Image's transformer from an original-layout file and from GGUF Q8_0, SDXL's UNet, VAE
and text encoders from files, and every kind of bad file refused by name while the server keeps serving.

The fixtures (scripts/tiny_single_files.py) are written by ComfyUI's own key maps from the tiny folders, so
"bit-identical" checks diffusers' conversion against an independent one. The checkpoint is of tiny-sdxl-bigg
(CLIP-L and OpenCLIP-bigG of different widths, as in real SDXL: diffusers tells them apart by width). Flux in
BFL's layout: diffusers' Flux converter assumes FLUX.1's width (3072), so the tiny-flux transformer (16 wide) is
only a bad file here, and tiny-flux-3072's (FLUX.1's width, 1 + 1 blocks) is the one that goes through it, from
BFL's layout and from GGUF Q8_0.

GGUF bound: Q8_0 keeps 8 bits per weight with a scale per 32; on the tiny Z-Image the image differs from the
unquantized one by at most GGUF_MAX_DIFF and a mean of GGUF_MEAN_DIFF levels of 255 (measured 2026-12-03), on
tiny-flux-3072 by FLUX_GGUF_MAX_DIFF and FLUX_GGUF_MEAN_DIFF.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from comfy_harness import PromptRejected, load_api_workflow
from helpers import saved_image

logger = logging.getLogger(__name__)

GGUF_MAX_DIFF = 32  # measured 25
GGUF_MEAN_DIFF = 3.0  # measured 2.2
FLUX_GGUF_MAX_DIFF = 12  # measured 8 (6 with 512 T5 tokens; one forward pass: 0.018 of the output's max)
FLUX_GGUF_MEAN_DIFF = 1.5  # measured 0.86 (0.78 with 512 T5 tokens)
FLUX_3072 = "tiny-flux-3072"
# The tiny-flux-3072 runs encode 64 T5 tokens (the shipped flux_replace_denoiser too), not flux_text2image's 512:
# at FLUX.1's width the text tokens are most of the transformer's work (a run: ~3 s instead of ~17 s).
FLUX_TOKENS = 64
FLUX_Q8_0 = "diffusion_models/tiny-flux-3072-Q8_0.gguf"


def image_of(server, client, prompt) -> np.ndarray:
    return saved_image(server, client.run(prompt), "5")


def failure(client, prompt) -> str:
    run = client.run(prompt)
    assert run.status == "error", "the prompt ran"
    return run.error()["exception_message"]


@pytest.fixture(scope="module")
def sdxl_image(server):
    return image_of(server, server.client(), load_api_workflow("sdxl_text2image"))


@pytest.fixture(scope="module")
def bigg_image(server):
    prompt = load_api_workflow("sdxl_text2image")
    prompt["1"]["inputs"]["model"] = "tiny-sdxl-bigg"
    return image_of(server, server.client(), prompt)


@pytest.fixture(scope="module")
def flux_3072_image(server):
    """flux_text2image on the tiny-flux-3072 folder."""
    prompt = load_api_workflow("flux_text2image")
    prompt["1"]["inputs"]["model"] = FLUX_3072
    return image_of(server, server.client(), short_text(prompt))


@pytest.fixture(scope="module")
def z_image(server):
    return image_of(server, server.client(), load_api_workflow("z_image_text2image"))


def checkpoint(config: str = "tiny-sdxl-bigg-configs", ckpt: str = "tiny-sdxl-bigg.safetensors") -> dict:
    prompt = load_api_workflow("sdxl_checkpoint")
    prompt["1"]["inputs"].update(ckpt_name=ckpt, config=config)
    return prompt


def replaced_z_image(source: str, **inputs) -> dict:
    prompt = load_api_workflow("z_image_replace_denoiser")
    prompt["6"]["inputs"].update(source=source, **inputs)
    return prompt


def short_text(prompt: dict) -> dict:
    prompt["2"]["inputs"]["max_sequence_length"] = FLUX_TOKENS
    return prompt


def replaced_flux(source: str = "diffusion_models/tiny-flux-3072-bfl.safetensors") -> dict:
    prompt = load_api_workflow("flux_replace_denoiser")
    assert prompt["6"]["inputs"]["source"] == "diffusion_models/tiny-flux-3072-bfl.safetensors"
    prompt["6"]["inputs"]["source"] = source
    return short_text(prompt)


def replaced_sdxl(source: str, component: str = "auto") -> dict:
    """sdxl_text2image with a Replace Component between the loader and the SDXL nodes."""
    prompt = load_api_workflow("sdxl_text2image")
    prompt["6"] = {
        "class_type": "MDiff_ReplaceComponent",
        "inputs": {"components": ["1", 0], "source": source, "component": component, "weight_dtype": "default"},
    }
    for node in ("2", "3", "4"):
        prompt[node]["inputs"]["components"] = ["6", 0]
    return prompt


def test_an_all_in_one_checkpoint_gives_the_folders_image_with_a_full_or_a_configs_only_folder(
    server, client, bigg_image
):
    assert np.array_equal(image_of(server, client, checkpoint()), bigg_image)
    assert np.array_equal(image_of(server, client, checkpoint(config="tiny-sdxl-bigg")), bigg_image)


def test_an_original_layout_transformer_gives_the_folders_image(server, client, z_image):
    assert np.array_equal(image_of(server, client, load_api_workflow("z_image_replace_denoiser")), z_image)


def test_a_gguf_q8_transformer_runs_close_to_the_unquantized_one(server, client, z_image):
    image = image_of(server, client, replaced_z_image("diffusion_models/tiny-z-image-Q8_0.gguf"))
    difference = np.abs(image.astype(int) - z_image.astype(int))
    assert difference.max() <= GGUF_MAX_DIFF and difference.mean() <= GGUF_MEAN_DIFF, (
        difference.max(),
        difference.mean(),
    )
    assert not np.array_equal(image, z_image)  # it did run quantized


def test_the_flux_replace_workflow_is_flux_text2image_on_tiny_flux_3072_with_a_replaced_denoiser():
    replaced, plain = load_api_workflow("flux_replace_denoiser"), load_api_workflow("flux_text2image")
    assert replaced.pop("6")["inputs"] == {
        "components": ["1", 0],
        "source": "diffusion_models/tiny-flux-3072-bfl.safetensors",
        "component": "auto",
        "weight_dtype": "default",
    }
    for node in ("2", "3", "4"):
        assert replaced[node]["inputs"].pop("components") == ["6", 0]
        assert plain[node]["inputs"].pop("components") == ["1", 0]
    plain["1"]["inputs"]["model"] = FLUX_3072
    plain["2"]["inputs"]["max_sequence_length"] = FLUX_TOKENS
    plain["5"]["inputs"]["filename_prefix"] = "mdiff_flux_replace_denoiser"
    assert replaced == plain


def test_a_bfl_flux_transformer_gives_the_folders_image(server, client, flux_3072_image):
    """diffusers' BFL converter at FLUX.1's width, against ComfyUI's diffusers -> BFL conversion."""
    assert np.array_equal(image_of(server, client, replaced_flux()), flux_3072_image)


def test_a_gguf_q8_flux_transformer_runs_close_to_the_unquantized_one(server, client, flux_3072_image):
    image = image_of(server, client, replaced_flux(FLUX_Q8_0))
    difference = np.abs(image.astype(int) - flux_3072_image.astype(int))
    logger.info("tiny-flux-3072 Q8_0: max %d, mean %.3f of 255", difference.max(), difference.mean())
    assert difference.max() <= FLUX_GGUF_MAX_DIFF and difference.mean() <= FLUX_GGUF_MEAN_DIFF, (
        difference.max(),
        difference.mean(),
    )
    assert not np.array_equal(image, flux_3072_image)  # it did run quantized


@pytest.mark.parametrize(
    "source",
    [
        "diffusion_models/tiny-sdxl-unet.safetensors",  # models/unet, without the checkpoint's key prefix
        "vae/tiny-sdxl-vae.safetensors",
        "text_encoders/tiny-clip-l.safetensors",
        "text_encoders/tiny-clip-g-prefixed.safetensors",
    ],
)
def test_a_unet_vae_or_text_encoder_from_a_file_gives_the_folders_image(server, client, sdxl_image, source):
    assert np.array_equal(image_of(server, client, replaced_sdxl(source)), sdxl_image)


def test_a_configs_only_folder_without_weights_names_the_missing_components(server, client):
    prompt = load_api_workflow("sdxl_text2image")
    prompt["1"]["inputs"]["model"] = "tiny-sdxl-configs"
    message = failure(client, prompt)
    assert "'SDXL Text Encoder'" in message and "text_encoder, text_encoder_2" in message
    assert "Replace Component" in message


BAD_CHECKPOINTS = {
    "tiny-sdxl-truncated.safetensors": "the file is truncated",
    "not-a-model.safetensors": "not a safetensors file",
    "tiny-sdxl-lora-kohya.safetensors": "it is a LoRA",
    "tiny-sdxl-vae.safetensors": "it is a VAE alone",
    "tiny-flux-bfl.safetensors": "diffusers sees a Flux checkpoint",
    "tiny-sdxl.safetensors": "its text_encoder_2: the file has no weights for text_projection.weight",
}


@pytest.mark.parametrize("name", list(BAD_CHECKPOINTS))
def test_a_bad_checkpoint_is_refused_by_name_and_the_server_keeps_serving(client, name):
    message = failure(client, checkpoint(ckpt=name, config="tiny-sdxl-configs"))
    assert "'Load Checkpoint (Diffusers)'" in message and f"checkpoints/{name}: " in message
    assert BAD_CHECKPOINTS[name] in message
    assert failure(client, checkpoint(ckpt=name, config="tiny-sdxl-configs")) == message  # nothing was cached
    assert client.run(load_api_workflow("sdxl_text2image")).status == "success"


BAD_COMPONENTS = {
    "diffusion_models/tiny-flux-IQ2_XXS.gguf": (replaced_z_image, "quant type IQ2_XXS cannot be read by diffusers"),
    "diffusion_models/tiny-flux-bfl.safetensors": (replaced_sdxl, "cannot be read as the UNet2DConditionModel"),
    "text_encoders/tiny-t5-fp16.safetensors": (replaced_sdxl, "auto cannot tell which component"),
}


@pytest.mark.parametrize("source", list(BAD_COMPONENTS))
def test_a_bad_component_file_is_refused_by_name(server, client, source):
    make_prompt, reason = BAD_COMPONENTS[source]
    message = failure(client, make_prompt(source))
    assert "'Replace Component (Diffusers)'" in message and f"{source}: " in message and reason in message


def test_names_outside_the_lists_are_refused_before_queueing(client):
    for prompt, name in (
        (checkpoint(ckpt="../../etc/passwd"), "ckpt_name"),
        (replaced_z_image("diffusion_models/../../../etc/passwd"), "source"),
        (replaced_z_image("vae/tiny-sdxl-vae.safetensors", component="transformer"), "component"),
    ):
        with pytest.raises(PromptRejected, match=name):
            client.submit(prompt)
