"""The tiny single-file fixtures (scripts/tiny_single_files.py): written by ComfyUI's converters, read back by
diffusers' own single-file loading (no mocks) and compared with the tiny model folders' models.

Where diffusers 0.42.1 cannot read a tiny file, a strict xfail records why, and a second test reads the file
another independent way (diffusers' converter called directly, or ComfyUI's own Flux model):
- tiny-sdxl's checkpoint's text_encoder_2: diffusers tells CLIP-L from OpenCLIP-bigG by their width, and both
  tiny encoders are 32 wide, so it loads CLIP-L's weights into it and leaves its text_projection on the meta
  device (tiny-sdxl-bigg's checkpoint, whose text_encoder_2 is 48 wide, loads whole);
- BFL Flux (safetensors or GGUF): convert_flux_transformer_checkpoint_to_diffusers hardcodes FLUX.1's width
  (inner_dim = 3072) to split the single blocks' fused linear1; tiny-flux-3072's transformer, that wide, goes
  through it (bit-identical in BFL's layout, close as GGUF Q8_0);
- a UNet without `model.diffusion_model.` (ComfyUI's UNETLoader reads either): convert_ldm_unet_checkpoint keeps
  only the keys under that prefix.
Z-Image's original layout (safetensors, and GGUF Q8_0) is what diffusers reads in place of BFL Flux: its converter
takes every size from the checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import safetensors
import safetensors.torch
import torch
from tiny_loras import build_tiny_loras
from tiny_single_files import (
    CLIP_G_PREFIX,
    CLIP_L_LEVEL,
    FILES,
    LISTED_IN,
    SINGLE_FILE_MODELS,
    build_tiny_single_files,
    comfy_modules,
    single_files_named_by,
)

logger = logging.getLogger(__name__)

SDXL, SDXL_BIGG, FLUX, Z_IMAGE = "tiny-sdxl", "tiny-sdxl-bigg", "tiny-flux", "tiny-z-image"
FLUX_3072 = "tiny-flux-3072"
CHECKPOINT = "checkpoints/tiny-sdxl.safetensors"
CHECKPOINTS = {SDXL: CHECKPOINT, SDXL_BIGG: "checkpoints/tiny-sdxl-bigg.safetensors"}
BFL = "diffusion_models/tiny-flux-bfl.safetensors"
Q8_0 = "diffusion_models/tiny-flux-Q8_0.gguf"
IQ2 = "diffusion_models/tiny-flux-IQ2_XXS.gguf"
BFL_3072 = "diffusion_models/tiny-flux-3072-bfl.safetensors"
Q8_0_3072 = "diffusion_models/tiny-flux-3072-Q8_0.gguf"
UNET = "unet/tiny-sdxl-unet.safetensors"
VAE = "vae/tiny-sdxl-vae.safetensors"
CONFIGS = {SDXL: "diffusers/tiny-sdxl-configs", SDXL_BIGG: "diffusers/tiny-sdxl-bigg-configs"}
Z_ORIGINAL = "diffusion_models/tiny-z-image-original.safetensors"
Z_Q8_0 = "diffusion_models/tiny-z-image-Q8_0.gguf"
Q8_0_BOUND = 0.05  # max |out(Q8_0) - out(F32)| / max |out(F32)|, one forward pass: measured 0.018 (the tiny Flux
# amplifies weight error: Q8_0 is 0.43% per tensor, and float16 weights alone give 0.0037)
Z_Q8_0_BOUND = 0.15  # the same for the tiny Z-Image through diffusers' GGUF loading: measured 0.061 (each
# quantized tensor alone adds 0.3-2.2%; float16 weights alone give 0.0022)
Q8_0_3072_BOUND = 0.05  # the same for tiny-flux-3072 through diffusers' GGUF loading: measured 0.018
CLIP_WIDTH = "diffusers picks the SDXL text encoders' weights by width, and both tiny CLIPs are 32 wide"
FLUX_WIDTH = "diffusers' BFL Flux converter hardcodes inner_dim = 3072 (FLUX.1's) to split single_blocks linear1"
UNET_PREFIX = "diffusers' LDM UNet converter reads only keys under model.diffusion_model."


@pytest.fixture(scope="module")
def models_dir(tiny_models) -> Path:
    assert {tiny_models[name].parent for name in SINGLE_FILE_MODELS} == {tiny_models[SDXL].parent}
    return tiny_models[SDXL].parent


@pytest.fixture(scope="module")
def built(models_dir, tmp_path_factory) -> Iterator[dict[str, Path]]:
    out = tmp_path_factory.mktemp("single_files")
    yield build_tiny_single_files(models_dir, out)
    shutil.rmtree(out, ignore_errors=True)  # 1.6 GB (tiny-flux-3072's); pytest keeps three sessions' tmp_path


@pytest.fixture(scope="module")
def sdxl_pipes(tiny_models) -> dict:
    from diffusers import StableDiffusionXLPipeline

    return {name: StableDiffusionXLPipeline.from_pretrained(str(tiny_models[name])) for name in (SDXL, SDXL_BIGG)}


@pytest.fixture(scope="module")
def sdxl(sdxl_pipes):
    return sdxl_pipes[SDXL]


@pytest.fixture(scope="module")
def flux(tiny_models):
    from diffusers import FluxTransformer2DModel

    return FluxTransformer2DModel.from_pretrained(str(tiny_models[FLUX] / "transformer")).eval()


def assert_same_weights(loaded: torch.nn.Module, reference: torch.nn.Module) -> None:
    got, want = loaded.state_dict(), reference.state_dict()
    assert sorted(got) == sorted(want)
    differing = [key for key in want if got[key].is_meta or not torch.equal(got[key], want[key])]
    assert not differing, differing[:5]


def header_tensors(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file's tensors as meta tensors of their shapes, from its header alone."""
    with path.open("rb") as file:
        header = json.loads(file.read(struct.unpack("<Q", file.read(8))[0]))
    return {key: torch.empty(info["shape"], device="meta") for key, info in header.items() if key != "__metadata__"}


def test_single_file_models_are_the_ones_files_need():
    assert set(SINGLE_FILE_MODELS) == {model for model, _ in FILES.values() if model is not None}


def test_builds_every_file_byte_identical(built, models_dir, tmp_path):
    """The command, in another process with other string hashes (ComfyUI's key maps are sets), writes the same
    bytes; a second build keeps every file."""
    assert sorted(built) == sorted(FILES)
    script = Path(__file__).resolve().parents[2] / "scripts" / "tiny_single_files.py"
    env = {**os.environ, "PYTHONHASHSEED": "1"}
    subprocess.run(
        [sys.executable, str(script), str(models_dir), str(tmp_path)], env=env, check=True, capture_output=True
    )
    for name, path in built.items():
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        assert files, name
        for file in files:
            assert file.read_bytes() == (tmp_path / name / file.relative_to(path)).read_bytes(), file
    mtimes = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    assert build_tiny_single_files(models_dir, tmp_path) == {name: tmp_path / name for name in FILES}
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == mtimes
    shutil.rmtree(tmp_path)  # as `built`'s


@pytest.mark.parametrize("model", [SDXL, SDXL_BIGG])
def test_configs_folder_has_no_weights(built, tiny_models, model):
    configs = built[CONFIGS[model]]
    names = {p.relative_to(configs).as_posix() for p in configs.rglob("*") if p.is_file()}
    assert {"model_index.json", "unet/config.json", "vae/config.json", "scheduler/scheduler_config.json"} <= names
    assert {"text_encoder_2/config.json", "tokenizer/tokenizer.json", "tokenizer_2/tokenizer_config.json"} <= names
    assert not [name for name in names if name.endswith((".safetensors", ".bin"))]
    for name in names:
        assert (configs / name).read_bytes() == (tiny_models[model] / name).read_bytes(), name


@pytest.fixture(scope="module")
def checkpoint_pipe(built, tiny_models):
    """`checkpoint_pipe(model, config)`: the model's checkpoint by from_single_file with its full folder or its
    configs-only one, loaded once."""
    from diffusers import StableDiffusionXLPipeline

    loaded = {}

    def load(model: str, config: str):
        if (model, config) not in loaded:
            folder = tiny_models[model] if config == "folder" else built[CONFIGS[model]]
            loaded[model, config] = StableDiffusionXLPipeline.from_single_file(
                str(built[CHECKPOINTS[model]]), config=str(folder), local_files_only=True
            )
        return loaded[model, config]

    return load


def _checkpoint_cases() -> list:
    clip_width = pytest.mark.xfail(strict=True, raises=AssertionError, reason=CLIP_WIDTH)
    return [
        pytest.param(
            model, config, component, marks=clip_width if (model, component) == (SDXL, "text_encoder_2") else ()
        )
        for model in (SDXL, SDXL_BIGG)
        for config in ("folder", "configs-only")
        for component in ("unet", "vae", "text_encoder", "text_encoder_2")
    ]


@pytest.mark.parametrize(("model", "config", "component"), _checkpoint_cases())
def test_checkpoint_from_single_file(checkpoint_pipe, sdxl_pipes, model, config, component):
    """config= (a local folder) and local_files_only are all diffusers needs (no original_config, no
    torch_dtype: float32 by default)."""
    loaded = getattr(checkpoint_pipe(model, config), component)
    assert loaded.dtype == torch.float32
    assert_same_weights(loaded, getattr(sdxl_pipes[model], component))


def test_bigg_checkpoint_text_encoders_differ_in_width(built, sdxl_pipes):
    """What lets diffusers tell them apart: the position embeddings' width."""
    embeddings = "text_model.embeddings.position_embedding.weight"
    with safetensors.safe_open(built[CHECKPOINTS[SDXL_BIGG]], "pt") as file:
        clip_l = file.get_slice("conditioner.embedders.0.transformer." + embeddings).get_shape()
        clip_g = file.get_slice("conditioner.embedders.1.model.positional_embedding").get_shape()
    bigg = sdxl_pipes[SDXL_BIGG]
    assert (clip_l[-1], clip_g[-1]) == (bigg.text_encoder.config.hidden_size, bigg.text_encoder_2.config.hidden_size)
    assert (clip_l[-1], clip_g[-1]) == (32, 48)
    assert bigg.unet.config.cross_attention_dim == 32 + 48


def test_checkpoint_open_clip_g_by_diffusers_converter(built, sdxl):
    """The bigG part read by the converter from_single_file would use, had it told the encoders apart."""
    from diffusers.loaders.single_file_utils import convert_open_clip_checkpoint
    from transformers import CLIPTextModelWithProjection

    model = CLIPTextModelWithProjection(sdxl.text_encoder_2.config)
    checkpoint = safetensors.torch.load_file(built[CHECKPOINT])
    converted = convert_open_clip_checkpoint(model, checkpoint, prefix="conditioner.embedders.1.model.")
    model.load_state_dict(converted, strict=True)
    assert_same_weights(model, sdxl.text_encoder_2)


@pytest.mark.parametrize("model", [SDXL, SDXL_BIGG])
def test_checkpoint_keys_are_stabilitys(built, model):
    with safetensors.safe_open(built[CHECKPOINTS[model]], "pt") as file:
        keys = list(file.keys())
        assert (
            file.get_tensor("conditioner.embedders.0.transformer.text_model.embeddings.position_ids").dtype
            == torch.int64
        )
        assert {file.get_tensor(key).dtype for key in keys if not key.endswith("position_ids")} == {torch.float32}
    prefixes = {key.split(".")[0] + "." + key.split(".")[1] for key in keys}
    assert prefixes == {"model.diffusion_model", "first_stage_model.encoder", "first_stage_model.decoder"} | {
        "first_stage_model.quant_conv",
        "first_stage_model.post_quant_conv",
        "conditioner.embedders",
    }
    assert "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight" in keys
    assert "conditioner.embedders.1.model.text_projection" in keys


@pytest.mark.parametrize(
    "name", ["checkpoints/tiny-sdxl-truncated.safetensors", "checkpoints/not-a-model.safetensors"]
)
def test_broken_checkpoints_fail_to_load(built, tiny_models, name):
    from diffusers import StableDiffusionXLPipeline

    with pytest.raises(OSError, match="Unable to load weights from checkpoint file"):
        StableDiffusionXLPipeline.from_single_file(
            str(built[name]), config=str(tiny_models[SDXL]), local_files_only=True
        )


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


@pytest.mark.xfail(strict=True, raises=KeyError, reason=UNET_PREFIX)
def test_unet_from_single_file(built, tiny_models, sdxl):
    from diffusers import UNet2DConditionModel

    loaded = UNet2DConditionModel.from_single_file(str(built[UNET]), config=str(tiny_models[SDXL]), subfolder="unet")
    assert_same_weights(loaded, sdxl.unet)


def test_unet_with_prefix_by_diffusers_converter(built, sdxl):
    """The UNETLoader file is the checkpoint's UNet; with the prefix back, diffusers' converter reads it."""
    from diffusers import UNet2DConditionModel
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint

    unet = safetensors.torch.load_file(built[UNET])
    with safetensors.safe_open(built[CHECKPOINT], "pt") as file:
        in_checkpoint = {key for key in file.keys() if key.startswith("model.diffusion_model.")}
    assert {"model.diffusion_model." + key for key in unet} == in_checkpoint
    converted = convert_ldm_unet_checkpoint(
        {"model.diffusion_model." + k: v for k, v in unet.items()}, sdxl.unet.config
    )
    model = UNet2DConditionModel.from_config(sdxl.unet.config)
    model.load_state_dict(converted, strict=True)
    assert_same_weights(model, sdxl.unet)


def test_unet_config_is_comfyuis_detection(built, sdxl):
    """The unet_config derived from the diffusers config is what ComfyUI reads off the written UNet."""
    from tiny_single_files import comfy_unet_config

    detected = comfy_modules().model_detection.detect_unet_config(safetensors.torch.load_file(built[UNET]), "")
    derived = comfy_unet_config(dict(sdxl.unet.config))
    assert {key: detected[key] for key in derived} == derived


def test_vae_from_single_file(built, tiny_models, sdxl):
    from diffusers import AutoencoderKL

    loaded = AutoencoderKL.from_single_file(str(built[VAE]), config=str(tiny_models[SDXL]), subfolder="vae")
    assert_same_weights(loaded, sdxl.vae)


@pytest.mark.parametrize(
    ("name", "component", "prefix"),
    [
        ("text_encoders/tiny-clip-l.safetensors", "text_encoder", CLIP_L_LEVEL),
        ("clip/tiny-clip-g-prefixed.safetensors", "text_encoder_2", CLIP_G_PREFIX),
    ],
)
def test_clip_files(built, sdxl, name, component, prefix):
    reference = getattr(sdxl, component)
    tensors = safetensors.torch.load_file(built[name])
    assert all(key.startswith(prefix) for key in tensors)
    unprefixed = {key.removeprefix(prefix): tensor for key, tensor in tensors.items()}
    want = reference.state_dict()
    assert sorted(unprefixed) == sorted(want)
    assert all(torch.equal(unprefixed[key], want[key]) for key in want)
    assert {tensor.dtype for tensor in tensors.values()} == {torch.float32}


def test_clip_l_file_loads_in_transformers(built, sdxl):
    """transformers 5's CLIPTextModel has no text_model level, yet loads the file's text_model.* keys."""
    from transformers import CLIPTextModel

    state_dict = safetensors.torch.load_file(built["text_encoders/tiny-clip-l.safetensors"])
    model, info = CLIPTextModel.from_pretrained(
        None, config=sdxl.text_encoder.config, state_dict=state_dict, output_loading_info=True
    )
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert_same_weights(model, sdxl.text_encoder)


def test_t5_fp16_file(built, tiny_models):
    from transformers import T5EncoderModel

    reference = T5EncoderModel.from_pretrained(str(tiny_models[FLUX] / "text_encoder_2"))
    tensors = safetensors.torch.load_file(built["text_encoders/tiny-t5-fp16.safetensors"])
    want = reference.state_dict()
    assert sorted(tensors) == sorted(set(want) - {"encoder.embed_tokens.weight"})  # tied to shared.weight
    assert {tensor.dtype for tensor in tensors.values()} == {torch.float16}
    assert all(torch.equal(tensors[key], want[key].half()) for key in tensors)
    model, info = T5EncoderModel.from_pretrained(
        None, config=reference.config, state_dict=tensors, output_loading_info=True
    )
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert torch.equal(model.encoder.embed_tokens.weight, tensors["shared.weight"])


INFERRED = {
    CHECKPOINT: "v1",  # xl_base needs conditioner.embedders.1.model.transformer.resblocks.9 (10+ bigG layers)
    CHECKPOINTS[SDXL_BIGG]: "v1",
    Z_ORIGINAL: "z-image-turbo",
    BFL: "flux-dev",
    BFL_3072: "flux-dev",
    UNET: "v1",
    VAE: "v1",
}


@pytest.mark.parametrize("name", sorted(INFERRED))
def test_infer_diffusers_model_type_from_header(built, name):
    """infer_diffusers_model_type needs key names and shapes only: a header's meta tensors give the same answer.
    It falls back to "v1" for anything it does not recognise."""
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type

    loaded = infer_diffusers_model_type(safetensors.torch.load_file(built[name]))
    assert infer_diffusers_model_type(header_tensors(built[name])) == loaded == INFERRED[name]


def test_infer_diffusers_model_type_of_loras(models_dir, tmp_path):
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type

    loras = build_tiny_loras(models_dir, tmp_path)
    assert len(loras) == 4
    for path in loras:
        loaded = infer_diffusers_model_type(safetensors.torch.load_file(path))
        assert infer_diffusers_model_type(header_tensors(path)) == loaded == "v1", path.name


def _node(class_type: str, **inputs) -> dict:
    return {"class_type": class_type, "inputs": inputs}


def test_single_files_named_by():
    """A prompt's checkpoint, configs-only folder and Replace Component sources, as the builder names them;
    full folders, links, other nodes and files the builder does not make are not."""
    prompt = {
        "1": _node("MDiff_LoadCheckpoint", ckpt_name="tiny-sdxl-bigg.safetensors", config="tiny-sdxl-bigg-configs"),
        "2": _node("MDiff_LoadCheckpoint", ckpt_name="tiny-sdxl.safetensors", config="tiny-sdxl"),
        "3": _node("MDiff_LoadComponents", model="tiny-sdxl-configs"),
        "4": _node("MDiff_LoadComponents", model="tiny-flux"),
        "5": _node("MDiff_ReplaceComponent", source="diffusion_models/tiny-z-image-Q8_0.gguf", components=["4", 0]),
        "6": _node("MDiff_ReplaceComponent", source="text_encoders/tiny-clip-g-prefixed.safetensors"),
        "7": _node("MDiff_ReplaceComponent", source="diffusion_models/tiny-sdxl-unet.safetensors"),
        "8": _node("MDiff_ReplaceComponent", source="diffusers/tiny-flux"),
        "9": _node("MDiff_ReplaceComponent", source="vae/someone-elses-vae.safetensors"),
        "10": _node("MDiff_LoadCheckpoint", ckpt_name=["11", 0], config="tiny-sdxl-configs"),
        "11": _node("CheckpointLoaderSimple", ckpt_name="tiny-sdxl-truncated.safetensors"),
        "12": _node("MDiff_LoraLoader", lora_name="tiny-sdxl-lora-kohya.safetensors"),
    }
    assert single_files_named_by(prompt) == [
        "checkpoints/tiny-sdxl-bigg.safetensors",
        "diffusers/tiny-sdxl-bigg-configs",
        "checkpoints/tiny-sdxl.safetensors",
        "diffusers/tiny-sdxl-configs",
        "diffusion_models/tiny-z-image-Q8_0.gguf",
        "clip/tiny-clip-g-prefixed.safetensors",  # ComfyUI lists models/clip under text_encoders
        "unet/tiny-sdxl-unet.safetensors",  # and models/unet under diffusion_models
    ]
    assert set(single_files_named_by(prompt)) <= set(FILES)
    assert single_files_named_by({"1": _node("MDiff_LoadComponents", model="tiny-sdxl")}) == []


def test_listed_in_is_comfyuis_folder_paths():
    comfy_modules()  # ComfyUI's root on sys.path
    import folder_paths

    for name, listed in LISTED_IN.items():
        assert sorted(Path(path).name for path in folder_paths.get_folder_paths(name)) == sorted(listed), name
