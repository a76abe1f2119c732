"""Build a tiny, random-weight, Flux-shaped diffusers folder (or its Flux Kontext variant) for tests.

The folder has the standard diffusers layout of `FluxPipeline` (or `FluxKontextPipeline` with
`--kontext`): model_index.json, transformer/, vae/, text_encoder/ (CLIP), text_encoder_2/ (T5),
tokenizer/, tokenizer_2/, scheduler/; safetensors weights, a few MiB in all. It loads with
`ModularPipeline.from_pretrained(folder)` (FluxModularPipeline, or FluxKontextModularPipeline for the
Kontext folder) without any network access. The weights are random but seeded: two builds with the same
seed are byte-identical. Nothing is downloaded.

    python scripts/build_tiny_flux.py OUT_DIR [--seed N] [--kontext]

The shapes follow Flux where the pipeline depends on them: 16 latent channels, a VAE that downsamples
by 8 (so 64x64 pixels are 8x8 latents, packed 2x2 into 16 tokens of 64 channels), guidance embeddings
(as in Flux dev and Kontext) and a dynamically shifted flow-matching Euler scheduler. Heights and widths
must be multiples of 16.

If OUT_DIR already holds a complete build by this builder version with the same seed, the call returns
at once (it does not even import torch). A build is written to a temporary folder next to OUT_DIR and
renamed into place, so an interrupted build never leaves a half-written OUT_DIR behind.
"""

from __future__ import annotations

import sys
from pathlib import Path

import tiny_build
from tiny_build import (
    build_folder,
    byte_level_vocab,
    clip_tokenizer,
    drop_empty_index_entries,
    run_builder_cli,
    t5_encoder_config,
    t5_tokenizer,
)

# Bump when anything below changes what is written, so existing folders get rebuilt.
BUILDER_VERSION = 1
KIND = "tiny-flux"
KIND_KONTEXT = "tiny-flux-kontext"
COMPONENTS = ("transformer", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler")

LATENT_CHANNELS = 16  # as in Flux; the transformer sees them packed 2x2, as 64 channels a token
CLIP_HIDDEN = 32  # the pooled CLIP text embedding (the transformer's pooled_projection_dim)
T5_HIDDEN = 32  # the T5 token embeddings (the transformer's joint_attention_dim)

# Random init gives a transformer whose velocity hardly depends on the prompt (the text reaches it through
# 512 mostly-padding T5 tokens and a small pooled-CLIP term in the time embedding) or, for Kontext, on the
# input image (16 image tokens among ~540 in near-uniform attention), and a decoder whose output is
# low-contrast grey. These factors, found by trying (tests/unit/test_tiny_flux.py checks the result), make
# prompts, seeds and input images give visibly different 64x64 images:
# - the pooled text embedding's projection into the time embedding, which modulates every block (AdaLN);
TRANSFORMER_POOLED_SCALE = 8.0
# - the final AdaLN modulation (norm_out), so that the time/text embedding shifts and scales the output;
TRANSFORMER_NORM_OUT_SCALE = 4.0
# - the RMSNorm weights of the attention queries and keys, so attention is sharp instead of uniform;
TRANSFORMER_QK_NORM_SCALE = 4.0
# - the values of the image stream (noise and Kontext image tokens) in the double-stream block.
TRANSFORMER_IMAGE_VALUE_SCALE = 4.0
# The random VAE encoder gives latent means of std ~0.1 after Flux's shift and scaling factors, next to a
# posterior std of ~0.36: an encoded image is lost in its own sampling noise. Scale the mean channels of the
# encoder's conv_out (Flux's VAE has no quant_conv) to a latent std of ~1, and pin the log-variance low.
VAE_LATENT_MEAN_SCALE = 8.0
VAE_LOGVAR = -12.0
# The decoder's last conv, for contrast (a few % of the pixels clip at 0 or 1).
VAE_DECODER_OUT_SCALE = 1.5


def _write_components(target: Path, seed: int, kontext: bool) -> None:
    """Construct the seeded random components and `save_pretrained` them into `target`."""
    import torch
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        FluxKontextPipeline,
        FluxPipeline,
        FluxTransformer2DModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    tokenizer = clip_tokenizer()
    tokenizer_2 = t5_tokenizer()
    clip_config = CLIPTextConfig(
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
        hidden_size=CLIP_HIDDEN,
        intermediate_size=37,
        layer_norm_eps=1e-5,
        num_attention_heads=4,
        num_hidden_layers=2,
        vocab_size=len(byte_level_vocab()),
        hidden_act="gelu",
        projection_dim=CLIP_HIDDEN,
        max_position_embeddings=77,
    )
    t5_config = T5Config(**t5_encoder_config(tokenizer_2, T5_HIDDEN))

    # Seed each model separately and leave the caller's global RNG state as it was.
    base = seed * 100
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(base + 1)
        text_encoder = CLIPTextModel(clip_config)
        torch.manual_seed(base + 2)
        text_encoder_2 = T5EncoderModel(t5_config)
        torch.manual_seed(base + 3)
        transformer = FluxTransformer2DModel(
            patch_size=1,
            in_channels=LATENT_CHANNELS * 4,
            num_layers=1,
            num_single_layers=1,
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=T5_HIDDEN,
            pooled_projection_dim=CLIP_HIDDEN,
            guidance_embeds=True,
            axes_dims_rope=(4, 6, 6),
        )
        torch.manual_seed(base + 4)
        vae = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            down_block_types=["DownEncoderBlock2D"] * 4,
            up_block_types=["UpDecoderBlock2D"] * 4,
            block_out_channels=[16, 16, 32, 32],
            layers_per_block=1,
            latent_channels=LATENT_CHANNELS,
            norm_num_groups=8,
            sample_size=64,
            # as in Flux's VAE: no quant convs, and its shift and scaling factors
            use_quant_conv=False,
            use_post_quant_conv=False,
            shift_factor=0.1159,
            scaling_factor=0.3611,
        )

    with torch.no_grad():
        pooled = transformer.time_text_embed.text_embedder.linear_2
        pooled.weight.mul_(TRANSFORMER_POOLED_SCALE)
        pooled.bias.mul_(TRANSFORMER_POOLED_SCALE)
        transformer.norm_out.linear.weight.mul_(TRANSFORMER_NORM_OUT_SCALE)
        for block in [*transformer.transformer_blocks, *transformer.single_transformer_blocks]:
            for name in ("norm_q", "norm_k", "norm_added_q", "norm_added_k"):
                norm = getattr(block.attn, name, None)
                if norm is not None:
                    norm.weight.mul_(TRANSFORMER_QK_NORM_SCALE)
        for block in transformer.transformer_blocks:
            block.attn.to_v.weight.mul_(TRANSFORMER_IMAGE_VALUE_SCALE)
            block.attn.to_v.bias.mul_(TRANSFORMER_IMAGE_VALUE_SCALE)
        # the encoder's conv_out rows: [mean..., logvar...]
        vae.encoder.conv_out.weight[:LATENT_CHANNELS].mul_(VAE_LATENT_MEAN_SCALE)
        vae.encoder.conv_out.bias[:LATENT_CHANNELS].mul_(VAE_LATENT_MEAN_SCALE)
        vae.encoder.conv_out.weight[LATENT_CHANNELS:].zero_()
        vae.encoder.conv_out.bias[LATENT_CHANNELS:].fill_(VAE_LOGVAR)
        vae.decoder.conv_out.weight.mul_(VAE_DECODER_OUT_SCALE)

    # Flux dev's scheduler config (resolution-dependent shift of the sigmas).
    scheduler = FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000,
        shift=3.0,
        use_dynamic_shifting=True,
        base_shift=0.5,
        max_shift=1.15,
        base_image_seq_len=256,
        max_image_seq_len=4096,
    )
    pipeline_class = FluxKontextPipeline if kontext else FluxPipeline
    pipe = pipeline_class(
        scheduler=scheduler,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
        transformer=transformer,
        image_encoder=None,
        feature_extractor=None,
    )
    pipe.save_pretrained(str(target), safe_serialization=True)

    drop_empty_index_entries(target)


def _write_flux(target: Path, seed: int) -> None:
    _write_components(target, seed, kontext=False)


def _write_flux_kontext(target: Path, seed: int) -> None:
    _write_components(target, seed, kontext=True)


def build_tiny_flux(out_dir: Path, seed: int = 0, kontext: bool = False) -> Path:
    """Write the tiny Flux folder (the Flux Kontext one when `kontext`) to `out_dir`, or keep it when
    already built, and return its path.

    Raises FileExistsError when `out_dir` exists, is not empty and was not made by a tiny-model builder.
    """
    if kontext:
        return build_folder(
            out_dir, seed, kind=KIND_KONTEXT, builder_version=BUILDER_VERSION, write=_write_flux_kontext
        )
    return build_folder(out_dir, seed, kind=KIND, builder_version=BUILDER_VERSION, write=_write_flux)


def build_tiny_flux_kontext(out_dir: Path, seed: int = 0) -> Path:
    """`build_tiny_flux(out_dir, seed, kontext=True)`."""
    return build_tiny_flux(out_dir, seed=seed, kontext=True)


def is_complete(out_dir: Path, seed: int, kontext: bool = False) -> bool:
    return tiny_build.is_complete(out_dir, seed, BUILDER_VERSION, KIND_KONTEXT if kontext else KIND)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--kontext" in args:
        args.remove("--kontext")
        return run_builder_cli(KIND_KONTEXT, build_tiny_flux_kontext, __doc__, args)
    return run_builder_cli(KIND, build_tiny_flux, __doc__, args)


if __name__ == "__main__":
    sys.exit(main())
