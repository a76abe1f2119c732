"""The tiny, random-weight, Flux-shaped diffusers folder and its Flux Kontext variant, for tests.

The folder has the standard diffusers layout of `FluxPipeline` (`FluxKontextPipeline` for tiny-flux-kontext):
model_index.json, transformer/, vae/, text_encoder/ (CLIP), text_encoder_2/ (T5), tokenizer/, tokenizer_2/,
scheduler/; safetensors weights, a few MiB in all. It loads with `ModularPipeline.from_pretrained(folder)`
(FluxModularPipeline, or FluxKontextModularPipeline for the Kontext folder) without any network access. The
weights are random but seeded: two builds with the same seed are byte-identical, and the two folders hold
the same weights (only the pipeline class differs). Nothing is downloaded.

    python scripts/build_tiny.py tiny-flux OUT_DIR [--seed N]
    python scripts/build_tiny.py tiny-flux-kontext OUT_DIR [--seed N]
    python scripts/build_tiny.py tiny-flux-3072 OUT_DIR [--seed N]   # FLUX.1's width: 1 GB, see FLUX_3072

The shapes follow Flux where the pipeline depends on them: 16 latent channels, a VAE that downsamples
by 8 (so 64x64 pixels are 8x8 latents, packed 2x2 into 16 tokens of 64 channels), guidance embeddings
(as in Flux dev and Kontext) and a dynamically shifted flow-matching Euler scheduler. Heights and widths
must be multiples of 16.
"""

from __future__ import annotations

from dataclasses import replace

from tiny_build import clip_tokenizer, t5_tokenizer

from tiny_recipes import Model, PinPosterior, Recipe, Scale, Scheduler, text_encoders

LATENT_CHANNELS = 16  # as in Flux; the transformer sees them packed 2x2, as 64 channels a token
CLIP_HIDDEN = 32  # the pooled CLIP text embedding (the transformer's pooled_projection_dim)
T5_HIDDEN = 32  # the T5 token embeddings (the transformer's joint_attention_dim)

# Random init gives a transformer whose velocity hardly depends on the prompt (the text reaches it through
# 512 mostly-padding T5 tokens and a small pooled-CLIP term in the time embedding) or, for Kontext, on the
# input image (16 image tokens among ~540 in near-uniform attention), and a decoder whose output is
# low-contrast grey. These factors, found by trying (tests/tools/test_tiny_flux.py checks the result), make
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

TRANSFORMER = Model(
    cls="diffusers.FluxTransformer2DModel",
    seed=3,
    config=dict(
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
    ),
    tweaks=(
        Scale(params=r"time_text_embed\.text_embedder\.linear_2\.(weight|bias)", factor=TRANSFORMER_POOLED_SCALE),
        Scale(params=r"norm_out\.linear\.weight", factor=TRANSFORMER_NORM_OUT_SCALE),
        Scale(
            params=r"(single_)?transformer_blocks\.\d+\.attn\.norm_(added_)?[qk]\.weight",
            factor=TRANSFORMER_QK_NORM_SCALE,
        ),
        # the double-stream blocks only ("single_transformer_blocks" does not match from the start)
        Scale(params=r"transformer_blocks\.\d+\.attn\.to_v\.(weight|bias)", factor=TRANSFORMER_IMAGE_VALUE_SCALE),
    ),
)
# Flux's VAE (Z-Image's too): 16 latent channels, 8x (four blocks), no quant convs, its shift and scaling.
VAE_CONFIG = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=["DownEncoderBlock2D"] * 4,
    up_block_types=["UpDecoderBlock2D"] * 4,
    block_out_channels=[16, 16, 32, 32],
    layers_per_block=1,
    latent_channels=LATENT_CHANNELS,
    norm_num_groups=8,
    sample_size=64,
    use_quant_conv=False,
    use_post_quant_conv=False,
    shift_factor=0.1159,
    scaling_factor=0.3611,
)
VAE = Model(
    cls="diffusers.AutoencoderKL",
    seed=4,
    config=VAE_CONFIG,
    tweaks=(
        PinPosterior(conv="encoder.conv_out", mean_scale=VAE_LATENT_MEAN_SCALE, logvar=VAE_LOGVAR),
        Scale(params=r"decoder\.conv_out\.weight", factor=VAE_DECODER_OUT_SCALE),
    ),
)

# Flux dev's scheduler config (resolution-dependent shift of the sigmas).
SCHEDULER = Scheduler(
    cls="diffusers.FlowMatchEulerDiscreteScheduler",
    config=dict(
        num_train_timesteps=1000,
        shift=3.0,
        use_dynamic_shifting=True,
        base_shift=0.5,
        max_shift=1.15,
        base_image_seq_len=256,
        max_image_seq_len=4096,
    ),
)
FLUX = Recipe(
    kind="tiny-flux",
    summary="Flux (dev-like, guidance embeds): CLIP + T5, flow-match Euler; text2image and image2image",
    builder_version=1,
    pipeline="diffusers.FluxPipeline",
    tokenizers={"tokenizer": clip_tokenizer, "tokenizer_2": t5_tokenizer},
    models={
        "text_encoder": text_encoders.clip(seed=1, hidden_size=CLIP_HIDDEN),
        "text_encoder_2": text_encoders.t5(seed=2, tokenizer="tokenizer_2", d_model=T5_HIDDEN),
        "transformer": TRANSFORMER,
        "vae": VAE,
    },
    scheduler=SCHEDULER,
)

FLUX_KONTEXT = replace(
    FLUX,
    kind="tiny-flux-kontext",
    summary="Flux Kontext: the tiny-flux weights as FluxKontextPipeline; image_conditioned and text2image",
    pipeline="diffusers.FluxKontextPipeline",
)

# tiny-flux-3072: the transformer at FLUX.1's width (24 heads x 128 = 3072, and the MLP ratio of 4 that every
# diffusers Flux block has; no config field sets it), still one double-stream and one single-stream block, on
# tiny-flux's text encoders, VAE, tokenizers and scheduler. diffusers' BFL converter
# (convert_flux_transformer_checkpoint_to_diffusers) hardcodes inner_dim = 3072 and mlp_ratio = 4.0, so only
# a transformer this wide goes through `from_single_file` in BFL's layout (the single-file fixtures of
# scripts/tiny_single_files.py). ~0.53 B parameters, stored as float16 (1.06 GB; float32 would be 2.1 GB).
FLUX_3072_HEADS, FLUX_3072_HEAD_DIM = 24, 128
TRANSFORMER_3072 = replace(
    TRANSFORMER,
    config={
        **TRANSFORMER.config,
        "num_attention_heads": FLUX_3072_HEADS,
        "attention_head_dim": FLUX_3072_HEAD_DIM,
        "axes_dims_rope": (16, 56, 56),  # FLUX.1's, summing to the head dim
    },
    dtype="float16",
)

FLUX_3072 = replace(
    FLUX,
    kind="tiny-flux-3072",
    summary="Flux at FLUX.1's width (3072; 1+1 blocks, float16): BFL and GGUF files via diffusers' converter",
    models={**FLUX.models, "transformer": TRANSFORMER_3072},
)
