"""Build a random-weight SDXL folder that ComfyUI's native loaders detect (Segmind-Vega-shaped UNet).

ComfyUI's `DiffusersLoader` finds a diffusers UNet's architecture by matching its state dict against
the UNet configs it knows (`unet_config_from_diffusers_unet` in comfy/model_detection.py), so the tiny
test SDXL is refused ("Could not detect model type"). The smallest SDXL-family UNet it knows is
Segmind Vega (`Segmind_Vega` there and in comfy/supported_models.py): model_channels 320, channel_mult
[1, 2, 4], two res blocks per level, transformer_depth [0, 0, 1, 1, 2, 2] (up path [2, 2, 2] deepest
first, then [1, 1, 1], then none), transformer_depth_middle -1 (a middle block of one res block, no
attention), linear projections, context_dim 2048, adm_in_channels 2816, 64 channels per head. This
script writes that UNet (about 745 M parameters) with full-size SDXL text encoders (CLIP ViT-L/14 and
OpenCLIP ViT-bigG/14 text towers with the `CLIPTextConfig` values of stable-diffusion-xl-base-1.0),
the SDXL VAE config and SDXL's Euler scheduler config. Every weight is random (seeded per component);
nothing is downloaded. Both diffusers (`ModularPipeline.from_pretrained`) and ComfyUI's
`DiffusersLoader` load the same files, which is what bench/bench_native.py needs.

The tokenizers use the real CLIP BPE vocabulary (49408 ids) from the `comfy/sd1_tokenizer` folder that
ComfyUI ships, so diffusers and ComfyUI's own tokenizer give the same token ids for a prompt
(`tokenizer_2` pads with "!" as SDXL's does). Without a ComfyUI checkout the byte-level vocabulary of
scripts/tiny_build.py is used, padded to 49408 ids with unused placeholder tokens.

    python scripts/build_vega_sdxl.py OUT_DIR [--seed N] [--dtype float16|float32] [--unet vega-sdxl|sdxl-base]

Weights are stored as float16 safetensors by default (about 3.1 GB; float32: about 6.3 GB): keep
OUT_DIR under /tmp or an ignored folder such as bench/results/, never in git. A complete build with
the same seed, dtype, UNet and builder version is kept as is (the call returns at once).

`--unet sdxl-base` swaps only the UNet for one with stable-diffusion-xl-base-1.0's unet/config.json
(about 2.57 B parameters: transformer depths 1, 2, 10 on the down path and 10 in a cross-attention middle
block; ComfyUI detects it as `SDXL`), which ComfyUI's and diffusers' LDM UNet converters handle (Vega's
attention-less middle block they do not). Everything else is the same; the folder's marker records the kind
`sdxl-base` (float16: about 6.9 GB). The default build is unchanged.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import tiny_build
from tiny_build import build_folder, byte_level_vocab, drop_empty_index_entries

BUILDER_VERSION = 1
KIND = "vega-sdxl"
SDXL_BASE_KIND = "sdxl-base"
VOCAB_SIZE = 49408
MAX_LENGTH = 77

# stable-diffusion-xl-base-1.0 text_encoder/config.json (CLIP ViT-L/14 text tower).
CLIP_L = dict(
    vocab_size=VOCAB_SIZE,
    hidden_size=768,
    intermediate_size=3072,
    projection_dim=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    max_position_embeddings=MAX_LENGTH,
    hidden_act="quick_gelu",
    layer_norm_eps=1e-5,
    attention_dropout=0.0,
    dropout=0.0,
    initializer_range=0.02,
    initializer_factor=1.0,
    bos_token_id=0,
    eos_token_id=2,
    pad_token_id=1,
)
# stable-diffusion-xl-base-1.0 text_encoder_2/config.json (OpenCLIP ViT-bigG/14 text tower).
CLIP_G = {
    **CLIP_L,
    "hidden_size": 1280,
    "intermediate_size": 5120,
    "projection_dim": 1280,
    "num_hidden_layers": 32,
    "num_attention_heads": 20,
    "hidden_act": "gelu",
}
# Segmind Vega's UNet in diffusers terms (ComfyUI's `Segmind_Vega` detection config above).
VEGA_UNET = dict(
    sample_size=128,
    in_channels=4,
    out_channels=4,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    mid_block_type="UNetMidBlock2D",  # one res block: ComfyUI's transformer_depth_middle -1
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    block_out_channels=(320, 640, 1280),
    layers_per_block=2,
    transformer_layers_per_block=(1, 1, 2),  # the first level has no attention; up path reversed: 2, 1
    attention_head_dim=(5, 10, 20),  # 64 channels per head
    use_linear_projection=True,
    cross_attention_dim=2048,
    addition_embed_type="text_time",
    addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=2816,
    norm_num_groups=32,
    norm_eps=1e-5,
    act_fn="silu",
    flip_sin_to_cos=True,
    freq_shift=0,
)
# stable-diffusion-xl-base-1.0 unet/config.json (every other field there is UNet2DConditionModel's default).
SDXL_BASE_UNET = {
    **VEGA_UNET,
    "mid_block_type": "UNetMidBlock2DCrossAttn",  # ComfyUI's transformer_depth_middle 10
    "transformer_layers_per_block": (1, 2, 10),  # ComfyUI's transformer_depth [0, 0, 2, 2, 10, 10]
}
UNETS = {KIND: VEGA_UNET, SDXL_BASE_KIND: SDXL_BASE_UNET}
# stable-diffusion-xl-base-1.0 vae/config.json.
SDXL_VAE = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(128, 256, 512, 512),
    layers_per_block=2,
    act_fn="silu",
    latent_channels=4,
    norm_num_groups=32,
    sample_size=1024,
    scaling_factor=0.13025,
    force_upcast=True,
)
# stable-diffusion-xl-base-1.0 scheduler/scheduler_config.json.
SDXL_EULER = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    prediction_type="epsilon",
    interpolation_type="linear",
    steps_offset=1,
    timestep_spacing="leading",
    use_karras_sigmas=False,
)


def comfy_tokenizer_dir() -> Path | None:
    """ComfyUI's bundled CLIP tokenizer folder (vocab.json + merges.txt), when a checkout is found."""
    try:
        from comfy_harness import comfyui_dir

        folder = comfyui_dir() / "comfy" / "sd1_tokenizer"
    except (ImportError, RuntimeError):
        return None
    return folder if (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file() else None


def clip_tokenizers():
    """(tokenizer, tokenizer_2, source): SDXL's two CLIP tokenizers, which differ only in padding."""
    from transformers import CLIPTokenizer

    folder = comfy_tokenizer_dir()
    if folder is not None:

        def make(pad_token: str):
            return CLIPTokenizer(
                vocab=str(folder / "vocab.json"),
                merges=str(folder / "merges.txt"),
                pad_token=pad_token,
                model_max_length=MAX_LENGTH,
            )

        source = f"CLIP BPE vocabulary from {folder}"
    else:
        vocab = byte_level_vocab()
        filler = {f"<|unused{i}|>": i for i in range(len(vocab), VOCAB_SIZE)}
        padded = {**vocab, **filler}

        def make(pad_token: str):
            return CLIPTokenizer(vocab=dict(padded), merges=[], pad_token=pad_token, model_max_length=MAX_LENGTH)

        source = f"byte-level vocabulary padded to {VOCAB_SIZE} ids"
    tokenizer, tokenizer_2 = make("<|endoftext|>"), make("!")
    if len(tokenizer) != VOCAB_SIZE:
        raise RuntimeError(f"tokenizer has {len(tokenizer)} ids, expected {VOCAB_SIZE}")
    return tokenizer, tokenizer_2, source


def prefix_text_model_keys(path: Path) -> None:
    """transformers 5 saves `CLIPTextModel` without the `text_model.` key prefix that every published
    SDXL `text_encoder` has; ComfyUI's loader only recognises the prefixed keys (without them its CLIP-L
    keeps uninitialised weights). transformers loads either layout, so write the published one."""
    from safetensors.torch import load_file, save_file

    weights = load_file(str(path))
    if all(key.startswith("text_model.") for key in weights):
        return
    renamed = {key if key.startswith("text_model.") else f"text_model.{key}": value for key, value in weights.items()}
    save_file(renamed, str(path), metadata={"format": "pt"})


def _writer(dtype_name: str, unet_config: dict = VEGA_UNET):
    def write(target: Path, seed: int) -> None:
        import torch
        from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
        from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

        dtype = {"float16": torch.float16, "float32": torch.float32}[dtype_name]
        tokenizer, tokenizer_2, source = clip_tokenizers()
        tiny_build.logger.info("tokenizers: %s", source)
        base = seed * 100
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(base + 1)
            text_encoder = CLIPTextModel(CLIPTextConfig(**CLIP_L)).to(dtype)
            torch.manual_seed(base + 2)
            text_encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig(**CLIP_G)).to(dtype)
            torch.manual_seed(base + 3)
            unet = UNet2DConditionModel(**unet_config).to(dtype)
            torch.manual_seed(base + 4)
            vae = AutoencoderKL(**SDXL_VAE).to(dtype)
        pipe = StableDiffusionXLPipeline(
            vae=vae,
            text_encoder=text_encoder,
            text_encoder_2=text_encoder_2,
            tokenizer=tokenizer,
            tokenizer_2=tokenizer_2,
            unet=unet,
            scheduler=EulerDiscreteScheduler(**SDXL_EULER),
            image_encoder=None,
            feature_extractor=None,
            force_zeros_for_empty_prompt=True,
        )
        pipe.save_pretrained(str(target), safe_serialization=True)
        drop_empty_index_entries(target)
        prefix_text_model_keys(target / "text_encoder" / "model.safetensors")

    return write


def build_vega_sdxl(out_dir: Path, seed: int = 0, dtype: str = "float16", unet: str = KIND) -> Path:
    """Write the folder to `out_dir` (or keep it, when already built with this seed, dtype and UNet)."""
    # The dtype is part of the builder version recorded in the marker, so a float32 build replaces a
    # float16 one instead of being taken for it; the UNet is the marker's kind.
    version = BUILDER_VERSION * 100 + (16 if dtype == "float16" else 32)
    write = _writer(dtype, UNETS[unet])
    return build_folder(Path(out_dir), seed, kind=unet, builder_version=version, write=write)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", type=Path, help="folder to write (kept as is when already built)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the random weights (default 0)")
    parser.add_argument("--dtype", choices=["float16", "float32"], default="float16", help="stored weight dtype")
    parser.add_argument("--unet", choices=list(UNETS), default=KIND, help="the UNet's shape (default vega-sdxl)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=f"[{args.unet}] %(message)s")
    try:
        path = build_vega_sdxl(args.out_dir, seed=args.seed, dtype=args.dtype, unet=args.unet)
    except FileExistsError as error:
        tiny_build.logger.error("%s", error)
        return 1
    print(path)  # noqa: T201 - the command's output is the folder's path
    return 0


if __name__ == "__main__":
    sys.exit(main())
