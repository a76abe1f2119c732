"""Build a tiny, random-weight, SDXL-shaped diffusers folder for tests and the offline demo.

The folder has the standard diffusers layout (model_index.json, unet/, vae/, text_encoder/,
text_encoder_2/, tokenizer/, tokenizer_2/, scheduler/), safetensors weights, a few MiB in all, and
loads with `ModularPipeline.from_pretrained(folder)` without any network access. The weights are
random but seeded: two builds with the same seed are byte-identical. Nothing is downloaded.

    python scripts/build_tiny_sdxl.py OUT_DIR [--seed N]

If OUT_DIR already holds a complete build by this builder version with the same seed, the call
returns at once (it does not even import torch), so it can run before every start. A build is
written to a temporary folder next to OUT_DIR and renamed into place, so an interrupted build never
leaves a half-written OUT_DIR behind.
"""

from __future__ import annotations

import sys
from pathlib import Path

import tiny_build
from tiny_build import build_folder, byte_level_vocab, clip_tokenizer, drop_empty_index_entries, run_builder_cli

# Bump when anything below changes what is written, so existing folders get rebuilt.
BUILDER_VERSION = 2
COMPONENTS = ("unet", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler")

# Random init gives a UNet whose noise prediction hardly depends on the prompt; these factors make the
# text conditioning (cross-attention values and the pooled-text/time embedding) and the prediction
# itself stronger, so different prompts and seeds give visibly different 64x64 images.
UNET_CONV_OUT_SCALE = 3.0
UNET_ATTN2_SCALE = 4.0
UNET_ADD_EMBED_SCALE = 4.0
# The random VAE encoder gives latent means of std ~0.25 and a posterior std of ~1, so after the 0.18215
# scaling factor an encoded image is buried in its own sampling noise and image2image ignores the input.
# Scale the mean channels of quant_conv up and pin the log-variance low (near-deterministic encoding).
VAE_LATENT_MEAN_SCALE = 20.0
VAE_LOGVAR = -12.0


def _write_components(target: Path, seed: int) -> None:
    """Construct the seeded random components and `save_pretrained` them into `target`."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    tokenizer = clip_tokenizer()
    vocab = byte_level_vocab()
    text_config = dict(
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
        hidden_size=32,
        intermediate_size=37,
        layer_norm_eps=1e-5,
        num_attention_heads=4,
        num_hidden_layers=2,
        vocab_size=len(vocab),
        hidden_act="gelu",
        projection_dim=32,
        max_position_embeddings=77,
    )

    # Seed each model separately and leave the caller's global RNG state as it was.
    base = seed * 100
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(base + 1)
        text_encoder = CLIPTextModel(CLIPTextConfig(**text_config))
        torch.manual_seed(base + 2)
        text_encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig(**text_config))
        torch.manual_seed(base + 3)
        unet = UNet2DConditionModel(
            block_out_channels=(32, 64),
            layers_per_block=1,
            sample_size=32,
            in_channels=4,
            out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            attention_head_dim=(2, 4),
            use_linear_projection=True,
            addition_embed_type="text_time",
            addition_time_embed_dim=8,
            transformer_layers_per_block=(1, 1),
            projection_class_embeddings_input_dim=6 * 8 + 32,
            cross_attention_dim=64,
            norm_num_groups=1,
        )
        torch.manual_seed(base + 4)
        vae = AutoencoderKL(
            block_out_channels=[32, 64],
            in_channels=3,
            out_channels=3,
            down_block_types=["DownEncoderBlock2D"] * 2,
            up_block_types=["UpDecoderBlock2D"] * 2,
            latent_channels=4,
            sample_size=64,
            norm_num_groups=32,
        )

    with torch.no_grad():
        unet.conv_out.weight.mul_(UNET_CONV_OUT_SCALE)
        unet.conv_out.bias.mul_(UNET_CONV_OUT_SCALE)
        for name, module in unet.named_modules():
            if name.endswith("attn2.to_v"):
                module.weight.mul_(UNET_ATTN2_SCALE)
        unet.add_embedding.linear_1.weight.mul_(UNET_ADD_EMBED_SCALE)
        moments = vae.config.latent_channels  # quant_conv rows: [mean..., logvar...]
        vae.quant_conv.weight[:moments].mul_(VAE_LATENT_MEAN_SCALE)
        vae.quant_conv.bias[:moments].mul_(VAE_LATENT_MEAN_SCALE)
        vae.quant_conv.weight[moments:].zero_()
        vae.quant_conv.bias[moments:].fill_(VAE_LOGVAR)

    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        steps_offset=1,
        timestep_spacing="leading",
    )
    pipe = StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        unet=unet,
        scheduler=scheduler,
        image_encoder=None,
        feature_extractor=None,
        force_zeros_for_empty_prompt=True,
    )
    pipe.save_pretrained(str(target), safe_serialization=True)

    drop_empty_index_entries(target)


def build_tiny_sdxl(out_dir: Path, seed: int = 0) -> Path:
    """Write the tiny SDXL folder to `out_dir` (or keep it, when already built) and return its path.

    Raises FileExistsError when `out_dir` exists, is not empty and was not made by this script.
    """
    return build_folder(out_dir, seed, kind="tiny-sdxl", builder_version=BUILDER_VERSION, write=_write_components)


def is_complete(out_dir: Path, seed: int) -> bool:
    return tiny_build.is_complete(out_dir, seed, BUILDER_VERSION)


if __name__ == "__main__":
    sys.exit(run_builder_cli("tiny-sdxl", build_tiny_sdxl, __doc__))
