"""The tiny, random-weight, SDXL-shaped diffusers folder for tests and the offline demo (the default model).

The folder has the standard diffusers layout (model_index.json, unet/, vae/, text_encoder/,
text_encoder_2/, tokenizer/, tokenizer_2/, scheduler/), safetensors weights, a few MiB in all, and
loads with `ModularPipeline.from_pretrained(folder)` without any network access. The weights are
random but seeded: two builds with the same seed are byte-identical. Nothing is downloaded.

    python scripts/build_tiny.py tiny-sdxl OUT_DIR [--seed N]

tiny-sdxl-bigg is the same model but for a wider text_encoder_2 (48 against text_encoder's 32), so that
its two CLIPs can be told apart by width, as diffusers' single-file loader tells CLIP-L from
OpenCLIP-bigG in an all-in-one SDXL checkpoint (scripts/tiny_single_files.py writes one); the UNet's
cross-attention and pooled-text inputs widen to match. Both encoders of tiny-sdxl are 32 wide.
"""

from __future__ import annotations

from dataclasses import replace

from tiny_build import clip_tokenizer

from tiny_recipes import Model, PinPosterior, Recipe, Scale, Scheduler, text_encoders

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
CLIP_L_WIDTH = 32
ADD_TIME_DIM = 8  # addition_time_embed_dim: each of SDXL's 6 size/crop numbers is embedded this wide
BIGG_WIDTH = 48  # tiny-sdxl-bigg's text_encoder_2 (hidden size and projection dim)


def unet_text_dims(clip_g_width: int) -> dict:
    """The UNet's text inputs for SDXL's two encoders: cross-attention on both encoders' hidden states side by
    side, the added embedding on the 6 time ids and text_encoder_2's projected pooled output."""
    return dict(
        cross_attention_dim=CLIP_L_WIDTH + clip_g_width,
        projection_class_embeddings_input_dim=6 * ADD_TIME_DIM + clip_g_width,
    )


UNET = Model(
    cls="diffusers.UNet2DConditionModel",
    seed=3,
    config=dict(
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
        addition_time_embed_dim=ADD_TIME_DIM,
        transformer_layers_per_block=(1, 1),
        **unet_text_dims(CLIP_L_WIDTH),
        norm_num_groups=1,
    ),
    tweaks=(
        Scale(params=r"conv_out\.(weight|bias)", factor=UNET_CONV_OUT_SCALE),
        Scale(params=r".*attn2\.to_v\.weight", factor=UNET_ATTN2_SCALE),
        Scale(params=r"add_embedding\.linear_1\.weight", factor=UNET_ADD_EMBED_SCALE),
    ),
)
VAE = Model(
    cls="diffusers.AutoencoderKL",
    seed=4,
    config=dict(
        block_out_channels=[32, 64],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2,
        latent_channels=4,
        sample_size=64,
        norm_num_groups=32,
    ),
    tweaks=(PinPosterior(conv="quant_conv", mean_scale=VAE_LATENT_MEAN_SCALE, logvar=VAE_LOGVAR),),
)

SDXL = Recipe(
    kind="tiny-sdxl",
    summary="SDXL: UNet, two CLIP text encoders, Euler; text2image and image2image at 64x64",
    builder_version=2,
    record_kind=False,  # the SDXL marker predates `kind`; keep its bytes unchanged
    pipeline="diffusers.StableDiffusionXLPipeline",
    pipeline_config={"force_zeros_for_empty_prompt": True},
    tokenizers={"tokenizer": clip_tokenizer, "tokenizer_2": clip_tokenizer},
    models={
        "text_encoder": text_encoders.clip(seed=1, hidden_size=CLIP_L_WIDTH),
        "text_encoder_2": text_encoders.clip(seed=2, hidden_size=CLIP_L_WIDTH, with_projection=True),
        "unet": UNET,
        "vae": VAE,
    },
    scheduler=Scheduler(
        cls="diffusers.EulerDiscreteScheduler",
        config=dict(
            beta_start=0.00085,
            beta_end=0.012,
            beta_schedule="scaled_linear",
            steps_offset=1,
            timestep_spacing="leading",
        ),
    ),
)

SDXL_BIGG = replace(
    SDXL,
    kind="tiny-sdxl-bigg",
    summary="SDXL as tiny-sdxl, its text_encoder_2 wider (48) than text_encoder (32), as bigG is than CLIP-L",
    builder_version=1,
    record_kind=True,
    models={
        **SDXL.models,
        "text_encoder_2": text_encoders.clip(seed=2, hidden_size=BIGG_WIDTH, with_projection=True),
        "unet": replace(UNET, config={**UNET.config, **unet_text_dims(BIGG_WIDTH)}),
    },
)
