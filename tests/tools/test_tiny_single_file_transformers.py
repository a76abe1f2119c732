"""The tiny single-file transformers (scripts/tiny_single_files.py) read back by diffusers' own single-file and
GGUF loading, compared with the tiny folders' transformers: Flux in BFL's layout (tiny-flux: only ComfyUI's own
Flux model can read it, diffusers' converter assumes FLUX.1's width; tiny-flux-3072, that wide: bit-identical),
Z-Image's original layout, and their GGUF Q8_0 files (close, bounds below); an unsupported quant type fails.
The files are the session's (tests/conftest.py `single_files`), shared with the server tests.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
import safetensors.torch
import torch
from original_layouts import comfy_modules
from single_file_checks import (
    BFL,
    BFL_3072,
    FLUX,
    FLUX_3072,
    FLUX_WIDTH,
    IQ2,
    Q8_0,
    Q8_0_3072,
    Z_IMAGE,
    Z_ORIGINAL,
    Z_Q8_0,
    assert_same_weights,
)
from tiny_single_files import FILES

logger = logging.getLogger(__name__)

Q8_0_BOUND = 0.05  # max |out(Q8_0) - out(F32)| / max |out(F32)|, one forward pass: measured 0.018 (the tiny Flux
# amplifies weight error: Q8_0 is 0.43% per tensor, and float16 weights alone give 0.0037)
Z_Q8_0_BOUND = 0.15  # the same for the tiny Z-Image through diffusers' GGUF loading: measured 0.061 (each
# quantized tensor alone adds 0.3-2.2%; float16 weights alone give 0.0022)
Q8_0_3072_BOUND = 0.05  # the same for tiny-flux-3072 through diffusers' GGUF loading: measured 0.018


@pytest.fixture(scope="module")
def built(single_files) -> dict[str, Path]:
    return {name: single_files / name for name in FILES}


@pytest.fixture(scope="module")
def flux(tiny_models):
    from diffusers import FluxTransformer2DModel

    return FluxTransformer2DModel.from_pretrained(str(tiny_models[FLUX] / "transformer")).eval()


def comfy_flux(config) -> torch.nn.Module:
    """ComfyUI's own BFL-layout Flux, sized from the diffusers config (its detection assumes FLUX.1's sizes)."""
    comfy_modules()  # ComfyUI's root on sys.path
    import comfy.ldm.flux.model
    import comfy.ops

    return comfy.ldm.flux.model.Flux(
        operations=comfy.ops.disable_weight_init,
        in_channels=config.in_channels // 4,  # ComfyUI packs 2x2 patches of the latent itself
        out_channels=config.in_channels // 4,
        patch_size=2,
        vec_in_dim=config.pooled_projection_dim,
        context_in_dim=config.joint_attention_dim,
        hidden_size=config.num_attention_heads * config.attention_head_dim,
        mlp_ratio=4.0,
        num_heads=config.num_attention_heads,
        depth=config.num_layers,
        depth_single_blocks=config.num_single_layers,
        axes_dim=list(config.axes_dims_rope),
        theta=10000,
        qkv_bias=True,
        guidance_embed=config.guidance_embeds,
    ).eval()


def flux_inputs(config) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    ids = torch.zeros(16, 3)
    ids[:, 1], ids[:, 2] = torch.arange(16) // 4, torch.arange(16) % 4
    return {
        "img": torch.randn(1, 16, config.in_channels, generator=generator),
        "img_ids": ids,
        "txt": torch.randn(1, 5, config.joint_attention_dim, generator=generator),
        "txt_ids": torch.zeros(5, 3),
        "y": torch.randn(1, config.pooled_projection_dim, generator=generator),
        "t": torch.tensor([0.7]),
        "guidance": torch.tensor([3.5]),
    }


@torch.no_grad()
def run_diffusers_flux(model, x: dict) -> torch.Tensor:
    return model(
        hidden_states=x["img"],
        img_ids=x["img_ids"],
        encoder_hidden_states=x["txt"],
        txt_ids=x["txt_ids"],
        pooled_projections=x["y"],
        timestep=x["t"],
        guidance=x["guidance"],
        return_dict=False,
    )[0]


@torch.no_grad()
def run_comfy_flux(model, x: dict) -> torch.Tensor:
    return model.forward_orig(
        x["img"], x["img_ids"][None], x["txt"], x["txt_ids"][None], x["t"], x["y"], guidance=x["guidance"]
    )


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return ((got - want).abs().max() / want.abs().max()).item()


@pytest.mark.xfail(strict=True, raises=RuntimeError, reason=FLUX_WIDTH)
def test_flux_bfl_from_single_file(built, tiny_models, flux):
    from diffusers import FluxTransformer2DModel

    loaded = FluxTransformer2DModel.from_single_file(
        str(built[BFL]), config=str(tiny_models[FLUX]), subfolder="transformer"
    )
    assert_same_weights(loaded, flux)


def test_flux_bfl_runs_as_comfyuis_flux(built, flux):
    """ComfyUI's own Flux loads the BFL file strictly and computes what diffusers' Flux computes from the folder."""
    model = comfy_flux(flux.config)
    model.load_state_dict(safetensors.torch.load_file(built[BFL]), strict=True)
    x = flux_inputs(flux.config)
    assert relative_error(run_comfy_flux(model, x), run_diffusers_flux(flux, x)) < 1e-5


@pytest.mark.xfail(strict=True, raises=RuntimeError, reason=FLUX_WIDTH)
def test_flux_q8_0_from_single_file(built, tiny_models):
    from diffusers import FluxTransformer2DModel, GGUFQuantizationConfig

    FluxTransformer2DModel.from_single_file(
        str(built[Q8_0]),
        config=str(tiny_models[FLUX]),
        subfolder="transformer",
        quantization_config=GGUFQuantizationConfig(compute_dtype=torch.float32),
    )


def dequantized_gguf(path: Path, unquantized: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The GGUF file's tensors by diffusers' GGUF reader and dequantizer, after checking them against the
    unquantized ones: the same names and shapes, Q8_0 for linear layers' weights whose last dim is a multiple
    of 32 and F32 elsewhere, within a Q8_0 step of each tensor's max."""
    import gguf
    from diffusers.models.model_loading_utils import load_gguf_checkpoint
    from diffusers.quantizers.gguf.utils import dequantize_gguf_tensor

    parsed = load_gguf_checkpoint(str(path))
    assert sorted(parsed) == sorted(unquantized)
    for name, tensor in parsed.items():
        fits = name.endswith(".weight") and unquantized[name].ndim >= 2 and unquantized[name].shape[-1] % 32 == 0
        assert getattr(tensor, "quant_type", gguf.GGMLQuantizationType.F32) == (
            gguf.GGMLQuantizationType.Q8_0 if fits else gguf.GGMLQuantizationType.F32
        ), name
    weights = {name: dequantize_gguf_tensor(tensor).float() for name, tensor in parsed.items()}
    assert {name: w.shape for name, w in weights.items()} == {name: w.shape for name, w in unquantized.items()}
    for name, weight in weights.items():  # Q8_0: 8-bit steps of each block's max
        assert (weight - unquantized[name]).abs().max() <= unquantized[name].abs().max() / 127 + 1e-6, name
    return weights


def test_flux_q8_0_gguf_close_to_float32(built, flux):
    """Q8_0 where Q8_0 fits, F32 elsewhere, BFL's shapes; one forward pass (ComfyUI's Flux) within Q8_0_BOUND of
    the float32 one."""
    weights = dequantized_gguf(built[Q8_0], safetensors.torch.load_file(built[BFL]))
    model = comfy_flux(flux.config)
    model.load_state_dict(weights, strict=True)
    x = flux_inputs(flux.config)
    error = relative_error(run_comfy_flux(model, x), run_diffusers_flux(flux, x))
    logger.info("Q8_0 forward: max abs diff / max abs output = %.5f", error)
    assert 0 < error < Q8_0_BOUND


def test_flux_iq2_xxs_gguf_is_unsupported(built, tiny_models):
    """diffusers' GGUF reader refuses the type; from_single_file turns that into a bare OSError (the reason is
    only in the exception's context chain)."""
    import gguf
    from diffusers import FluxTransformer2DModel, GGUFQuantizationConfig
    from diffusers.models.model_loading_utils import load_gguf_checkpoint

    iq2 = int(gguf.GGMLQuantizationType.IQ2_XXS)  # the message shows the type's number
    unsupported = rf"single_blocks\.0\.linear1\.weight has a quantization type: {iq2} which is unsupported"
    with pytest.raises(ValueError, match=unsupported):
        load_gguf_checkpoint(str(built[IQ2]))
    with pytest.raises(OSError, match="Unable to load weights from checkpoint file") as raised:
        FluxTransformer2DModel.from_single_file(
            str(built[IQ2]),
            config=str(tiny_models[FLUX]),
            subfolder="transformer",
            quantization_config=GGUFQuantizationConfig(compute_dtype=torch.float32),
        )
    chain, error = [], raised.value
    while error is not None:
        chain.append(error)
        error = error.__cause__ or error.__context__
    assert any(isinstance(e, ValueError) and re.search(unsupported, str(e)) for e in chain), chain


@pytest.fixture(scope="module")
def flux_3072(tiny_models):
    """tiny-flux-3072's transformer in the folder's dtype (float16)."""
    from diffusers import FluxTransformer2DModel

    folder = tiny_models[FLUX_3072] / "transformer"
    return FluxTransformer2DModel.from_pretrained(str(folder), torch_dtype=torch.float16).eval()


def test_flux_3072_is_flux1s_width(flux_3072):
    config = flux_3072.config
    assert config.num_attention_heads * config.attention_head_dim == 3072 and sum(config.axes_dims_rope) == 128
    assert flux_3072.single_transformer_blocks[0].proj_mlp.out_features == 4 * 3072  # mlp_ratio 4.0
    assert (config.num_layers, config.num_single_layers, config.guidance_embeds) == (1, 1, True)


def test_flux_3072_bfl_keys_and_dtype(built, flux_3072):
    with safetensors.safe_open(built[BFL_3072], "pt") as file:
        keys = set(file.keys())
        assert file.get_slice("single_blocks.0.linear1.weight").get_shape() == [3 * 3072 + 4 * 3072, 3072]
        assert {file.get_slice(key).get_dtype() for key in keys} == {"F16"}
    assert {
        "double_blocks.0.img_attn.qkv.weight",
        "final_layer.adaLN_modulation.1.weight",
        "guidance_in.in_layer.bias",
    } <= keys
    assert not [key for key in keys if re.search(r"transformer_blocks|to_[qkv]|norm_out", key)]


def test_flux_3072_bfl_from_single_file(built, tiny_models, flux_3072):
    """diffusers' own BFL converter, at the width it assumes, gives the folder's weights bit for bit."""
    from diffusers import FluxTransformer2DModel

    loaded = FluxTransformer2DModel.from_single_file(
        str(built[BFL_3072]),
        config=str(tiny_models[FLUX_3072]),
        subfolder="transformer",
        local_files_only=True,
        torch_dtype=torch.float16,
    )
    assert loaded.dtype == torch.float16
    assert_same_weights(loaded, flux_3072)


def test_flux_3072_q8_0_from_single_file_close_to_unquantized(built, tiny_models):
    """diffusers' own GGUF loading (GGUFLinear layers computing from the Q8_0 bytes): one forward pass within
    Q8_0_3072_BOUND of the folder's (float16 weights, computed in float32)."""
    from diffusers import FluxTransformer2DModel, GGUFQuantizationConfig
    from diffusers.quantizers.gguf.utils import GGUFLinear

    dequantized_gguf(built[Q8_0_3072], safetensors.torch.load_file(built[BFL_3072]))
    loaded = FluxTransformer2DModel.from_single_file(
        str(built[Q8_0_3072]),
        config=str(tiny_models[FLUX_3072]),
        subfolder="transformer",
        local_files_only=True,
        quantization_config=GGUFQuantizationConfig(compute_dtype=torch.float32),
    ).eval()
    assert isinstance(loaded.single_transformer_blocks[0].proj_mlp, GGUFLinear)
    folder = tiny_models[FLUX_3072] / "transformer"
    reference = FluxTransformer2DModel.from_pretrained(str(folder), torch_dtype=torch.float32).eval()
    x = flux_inputs(reference.config)
    error = relative_error(run_diffusers_flux(loaded, x), run_diffusers_flux(reference, x))
    logger.info("tiny-flux-3072 Q8_0 forward: max abs diff / max abs output = %.5f", error)
    assert 0 < error < Q8_0_3072_BOUND


@pytest.fixture(scope="module")
def z_image(tiny_models):
    from diffusers import ZImageTransformer2DModel

    return ZImageTransformer2DModel.from_pretrained(str(tiny_models[Z_IMAGE] / "transformer")).eval()


def test_z_image_original_keys_are_z_images(built, z_image):
    """Fused qkv, `attention.out`, `q_norm`/`k_norm`, `x_embedder`, `final_layer`: no diffusers name left."""
    with safetensors.safe_open(built[Z_ORIGINAL], "pt") as file:
        keys = set(file.keys())
        qkv = file.get_slice("layers.0.attention.qkv.weight").get_shape()
    assert qkv == [3 * z_image.config.dim, z_image.config.dim]
    assert {"x_embedder.weight", "final_layer.linear.weight", "cap_pad_token", "x_pad_token"} <= keys
    assert {"noise_refiner.0.attention.q_norm.weight", "context_refiner.0.attention.out.weight"} <= keys
    assert not [key for key in keys if re.search(r"to_[qkvo]|norm_[qk]\.|all_|2-1", key)]
    assert len(keys) == len(z_image.state_dict()) - 2 * (z_image.config.n_layers + 2 * z_image.config.n_refiner_layers)


def test_z_image_original_from_single_file(built, tiny_models, z_image):
    from diffusers import ZImageTransformer2DModel

    loaded = ZImageTransformer2DModel.from_single_file(
        str(built[Z_ORIGINAL]), config=str(tiny_models[Z_IMAGE]), subfolder="transformer", local_files_only=True
    )
    assert loaded.dtype == torch.float32
    assert_same_weights(loaded, z_image)


@torch.no_grad()
def run_z_image(model) -> torch.Tensor:
    """One forward pass at 64x64 (8x8 latents) with a 7-token caption, as ZImagePipeline calls it."""
    generator = torch.Generator().manual_seed(0)
    config = model.config
    latents = [torch.randn(config.in_channels, 1, 8, 8, generator=generator)]
    caption = [torch.randn(7, config.cap_feat_dim, generator=generator)]
    return model(latents, torch.tensor([0.7]), caption, return_dict=False)[0][0]


def test_z_image_q8_0_from_single_file_close_to_float32(built, tiny_models, z_image):
    """diffusers' own GGUF loading (GGUFLinear layers computing from the Q8_0 bytes): one forward pass within
    Z_Q8_0_BOUND of the float32 folder's."""
    from diffusers import GGUFQuantizationConfig, ZImageTransformer2DModel
    from diffusers.quantizers.gguf.utils import GGUFLinear

    dequantized_gguf(built[Z_Q8_0], safetensors.torch.load_file(built[Z_ORIGINAL]))
    loaded = ZImageTransformer2DModel.from_single_file(
        str(built[Z_Q8_0]),
        config=str(tiny_models[Z_IMAGE]),
        subfolder="transformer",
        local_files_only=True,
        quantization_config=GGUFQuantizationConfig(compute_dtype=torch.float32),
    ).eval()
    assert isinstance(loaded.layers[0].attention.to_q, GGUFLinear)
    error = relative_error(run_z_image(loaded), run_z_image(z_image))
    logger.info("Z-Image Q8_0 forward: max abs diff / max abs output = %.5f", error)
    assert 0 < error < Z_Q8_0_BOUND
