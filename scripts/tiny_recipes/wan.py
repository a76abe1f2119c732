"""The tiny, random-weight, Wan 2.1 and Wan 2.2 text-to-video diffusers folders, for tests.

The tiny-wan folder has the standard diffusers layout of `WanPipeline` (Wan 2.1 T2V): model_index.json,
transformer/ (WanTransformer3DModel), vae/ (AutoencoderKLWan), text_encoder/ (UMT5EncoderModel),
tokenizer/ (a T5 tokenizer built in memory), scheduler/ (UniPCMultistepScheduler with the flow-matching
settings of the Wan 2.1 checkpoints); safetensors weights, a few MiB in all. It loads with
`ModularPipeline.from_pretrained(folder)` (WanModularPipeline with WanBlocks) without any network access.
The weights are random but seeded: two builds with the same seed are byte-identical. Nothing is
downloaded.

The Wan 2.2 variant (tiny-wan22) is the layout of the Wan 2.2 T2V A14B checkpoints: the same folder plus
transformer_2/ (a second WanTransformer3DModel of the same shape with other random weights, the low-noise
expert) and `boundary_ratio` in model_index.json. diffusers resolves a folder with a `boundary_ratio` to
Wan22ModularPipeline (Wan22Blocks), whose denoising loop runs `transformer` for timesteps
t >= boundary_ratio * 1000 and `transformer_2` below.

    python scripts/build_tiny.py tiny-wan OUT_DIR [--seed N]
    python scripts/build_tiny.py tiny-wan22 OUT_DIR [--seed N]

The shapes follow Wan 2.1 where the pipeline depends on them: 16 latent channels, a VAE that
downsamples by 8 in space and 4 in time (so 5 frames of 64x64 pixels are 2 latent frames of 8x8),
and a transformer that patchifies latents 1x2x2. Heights and widths must be multiples of 16 and
`num_frames - 1` a multiple of 4.
"""

from __future__ import annotations

from dataclasses import replace

from tiny_build import t5_tokenizer

from tiny_recipes import Model, Recipe, Scale, Scheduler, text_encoders

# Where Wan 2.2 switches from the high-noise transformer to the low-noise transformer_2, as a fraction of
# the 1000 training timesteps: 0.875 as in Wan 2.2 T2V A14B.
BOUNDARY_RATIO = 0.875

LATENT_CHANNELS = 16  # as in Wan 2.1 (the VAE's z_dim and the transformer's in/out channels)
TEXT_HIDDEN = 32  # the UMT5 token embeddings (the transformer's text_dim)

# Random init gives a transformer whose velocity hardly depends on the prompt (a 64x64 video changes by
# ~0.0002 between prompts): the text reaches it only through cross-attention over 512 T5 tokens, nearly
# all of them zero padding, with near-uniform attention weights. And the random decoder gives low-contrast
# grey frames. These factors, found by trying (tests/tools/test_tiny_wan.py checks the result), make prompts
# and seeds give visibly different videos (mean pixel difference ~0.1):
# - the RMSNorm weights of the cross-attention queries and keys, so attention picks out the prompt tokens;
TRANSFORMER_CROSS_QK_NORM_SCALE = 4.0
# - the cross-attention values, so what it picks out moves the hidden states;
TRANSFORMER_CROSS_VALUE_SCALE = 4.0
# - the text embedding's output projection, so prompt tokens stand out from the padding;
TRANSFORMER_TEXT_EMBED_SCALE = 4.0
# - the output projection (the predicted velocity itself);
TRANSFORMER_PROJ_OUT_SCALE = 2.0
# - the decoder's last conv, for contrast (a few % of the pixels clip at 0 or 1).
VAE_DECODER_OUT_SCALE = 2.0

# (Helios' transformer, whose blocks are Wan's, takes the same.)
TRANSFORMER_TWEAKS = (
    Scale(params=r"blocks\.\d+\.attn2\.norm_[qk]\.weight", factor=TRANSFORMER_CROSS_QK_NORM_SCALE),
    Scale(params=r"blocks\.\d+\.attn2\.to_v\.(weight|bias)", factor=TRANSFORMER_CROSS_VALUE_SCALE),
    Scale(params=r"condition_embedder\.text_embedder\.linear_2\.(weight|bias)", factor=TRANSFORMER_TEXT_EMBED_SCALE),
    Scale(params=r"proj_out\.(weight|bias)", factor=TRANSFORMER_PROJ_OUT_SCALE),
)

TRANSFORMER = Model(
    cls="diffusers.WanTransformer3DModel",
    seed=2,
    config=dict(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=LATENT_CHANNELS,
        out_channels=LATENT_CHANNELS,
        text_dim=TEXT_HIDDEN,
        freq_dim=32,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    ),
    tweaks=TRANSFORMER_TWEAKS,
)

VAE = Model(
    cls="diffusers.AutoencoderKLWan",
    seed=3,
    config=dict(
        base_dim=8,
        z_dim=LATENT_CHANNELS,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    ),
    tweaks=(Scale(params=r"decoder\.conv_out\.(weight|bias)", factor=VAE_DECODER_OUT_SCALE),),
)

WAN = Recipe(
    kind="tiny-wan",
    summary="Wan 2.1 T2V: UMT5, one transformer, Wan VAE, UniPC; 5-frame 64x64 videos",
    builder_version=1,
    pipeline="diffusers.WanPipeline",
    tokenizers={"tokenizer": t5_tokenizer},
    models={
        "text_encoder": text_encoders.t5(seed=1, tokenizer="tokenizer", d_model=TEXT_HIDDEN, umt5=True),
        "transformer": TRANSFORMER,
        "vae": VAE,
    },
    # The scheduler config of the Wan 2.1 T2V checkpoints (UniPC on flow-matching sigmas, shift 3), for
    # both variants.
    scheduler=Scheduler(
        cls="diffusers.UniPCMultistepScheduler",
        config=dict(
            num_train_timesteps=1000,
            prediction_type="flow_prediction",
            use_flow_sigmas=True,
            flow_shift=3.0,
            solver_order=2,
            solver_type="bh2",
            predict_x0=True,
            lower_order_final=True,
            final_sigmas_type="zero",
            timestep_spacing="linspace",
        ),
    ),
)

WAN22 = replace(
    WAN,
    kind="tiny-wan22",
    summary="Wan 2.2 T2V A14B layout: tiny-wan plus transformer_2 (low-noise expert), boundary_ratio 0.875",
    # The Wan 2.1 components keep their seeds, so they are the same in both variants; transformer_2 has the
    # transformer's shape and tweaks, and its own random weights.
    models={**WAN.models, "transformer_2": replace(TRANSFORMER, seed=4)},
    pipeline_config={"boundary_ratio": BOUNDARY_RATIO},
)
