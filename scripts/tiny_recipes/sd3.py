"""The tiny, random-weight, Stable-Diffusion-3-shaped diffusers folder, for tests.

The folder has the standard diffusers layout of `StableDiffusion3Pipeline`: model_index.json, transformer/
(SD3Transformer2DModel, an MMDiT), vae/, text_encoder/ (CLIP-L), text_encoder_2/ (CLIP-G), text_encoder_3/
(T5), tokenizer/, tokenizer_2/, tokenizer_3/, scheduler/; safetensors weights, about 2.5 MiB in all. It loads
with `ModularPipeline.from_pretrained(folder)` (StableDiffusion3ModularPipeline, StableDiffusion3AutoBlocks)
without any network access. The weights are random but seeded: two builds with the same seed are
byte-identical. Nothing is downloaded: the two CLIP tokenizers and the T5 one are built in memory.

    python scripts/build_tiny.py tiny-sd3 OUT_DIR [--seed N]

The shapes follow SD3 where the pipeline depends on them:
- both CLIPs are CLIPTextModelWithProjection: SD3 takes the penultimate hidden states of each (side by side,
  77 tokens) and both projected pooled outputs (concatenated: the transformer's pooled_projection_dim). CLIP-G
  is wider than CLIP-L (48 against 32), as bigG is (1280 against 768);
- diffusers pads the joined CLIP hidden states (32 + 48 = 80 wide) with zeros to the T5 width and stacks them
  on top of the T5 tokens, so T5 must be at least as wide as both CLIPs together: 96 (SD3: 2048 padded to
  4096), which is also the transformer's joint_attention_dim;
- a 16-channel VAE that downsamples by 8 (four blocks, no quant convs: Flux's tiny VAE) with SD3's scaling
  and shift factors, and a transformer with 2x2 patches: 64x64 pixels are 8x8 latents, 16 image tokens;
  heights and widths must be multiples of 16;
- sample_size 8, so the pipeline's default size (sample_size x 8) is 64x64; pos_embed_max_size 64 patches
  (SD3: 96), so images up to 1024x1024 (SD3's own size) fit the position embedding;
- SD3's scheduler: flow-match Euler with a fixed shift of 3.
"""

from __future__ import annotations

from dataclasses import replace

from tiny_build import clip_tokenizer, t5_tokenizer

from tiny_recipes import Model, Recipe, Scale, Scheduler, text_encoders
from tiny_recipes.flux import VAE_CONFIG as FLUX_VAE_CONFIG

LATENT_CHANNELS = 16
CLIP_L_WIDTH = 32
CLIP_G_WIDTH = 48
T5_WIDTH = 96  # >= CLIP_L_WIDTH + CLIP_G_WIDTH: the CLIP hidden states are zero-padded to it

# Random init gives a transformer whose velocity hardly depends on the prompt: the 16 image tokens attend
# near-uniformly over 77 CLIP + 256 T5 tokens, and T5's pad tokens (most of its 256) hardly depend on the
# prompt, so a prompt given to T5 alone changed the 64x64 image by 0.002 (mean absolute difference on a 0..1
# scale), to CLIP-L or CLIP-G alone by ~0.017. These factors, found by trying (tests/tools/test_tiny_sd3.py
# checks the result), make seeds (0.13), prompts (0.11) and a prompt to each encoder alone (CLIP-L 0.06,
# CLIP-G 0.05, T5 0.08) give visibly different images:
# - the image queries and the context keys of the joint attention, so attention is sharp instead of uniform;
TRANSFORMER_QK_SCALE = 5.0
# - the values of the context (text) stream, so what the image tokens attend to carries more text;
TRANSFORMER_CONTEXT_VALUE_SCALE = 4.0
# - the pooled CLIP embedding's projection into the time embedding, which modulates every block (AdaLN);
TRANSFORMER_POOLED_SCALE = 4.0
# - T5's self-attention queries, so its pad tokens attend sharply (to the prompt's tokens among others)
#   instead of averaging over 256 near-identical pads (without it, T5 alone: 0.024 at 4 steps).
T5_QUERY_SCALE = 4.0

TRANSFORMER = Model(
    cls="diffusers.SD3Transformer2DModel",
    seed=4,
    config=dict(
        sample_size=8,
        patch_size=2,
        in_channels=LATENT_CHANNELS,
        out_channels=LATENT_CHANNELS,
        num_layers=2,  # the last one is context_pre_only, as in SD3
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=T5_WIDTH,
        caption_projection_dim=32,  # the transformer's width (heads x head dim), as in SD3
        pooled_projection_dim=CLIP_L_WIDTH + CLIP_G_WIDTH,
        pos_embed_max_size=64,
    ),
    tweaks=(
        Scale(params=r"transformer_blocks\.\d+\.attn\.(to_q|add_k_proj)\.weight", factor=TRANSFORMER_QK_SCALE),
        Scale(
            params=r"transformer_blocks\.\d+\.attn\.add_v_proj\.(weight|bias)", factor=TRANSFORMER_CONTEXT_VALUE_SCALE
        ),
        Scale(params=r"time_text_embed\.text_embedder\.linear_2\.(weight|bias)", factor=TRANSFORMER_POOLED_SCALE),
    ),
)
T5 = replace(
    text_encoders.t5(seed=3, tokenizer="tokenizer_3", d_model=T5_WIDTH),
    tweaks=(Scale(params=r"encoder\.block\.\d+\.layer\.0\.SelfAttention\.q\.weight", factor=T5_QUERY_SCALE),),
)
# SD3's VAE: 16 latent channels, 8x, no quant convs (as Flux's), with SD3's own scaling and shift.
VAE = Model(
    cls="diffusers.AutoencoderKL",
    seed=5,
    config={**FLUX_VAE_CONFIG, "scaling_factor": 1.5305, "shift_factor": 0.0609},
)

SD3 = Recipe(
    kind="tiny-sd3",
    summary="SD3: CLIP-L + CLIP-G + T5, MMDiT, flow-match Euler (shift 3); text2image at 64x64",
    builder_version=1,
    pipeline="diffusers.StableDiffusion3Pipeline",
    tokenizers={"tokenizer": clip_tokenizer, "tokenizer_2": clip_tokenizer, "tokenizer_3": t5_tokenizer},
    models={
        "text_encoder": text_encoders.clip(seed=1, hidden_size=CLIP_L_WIDTH, with_projection=True),
        "text_encoder_2": text_encoders.clip(seed=2, hidden_size=CLIP_G_WIDTH, with_projection=True),
        "text_encoder_3": T5,
        "transformer": TRANSFORMER,
        "vae": VAE,
    },
    scheduler=Scheduler(
        cls="diffusers.FlowMatchEulerDiscreteScheduler",
        config=dict(num_train_timesteps=1000, shift=3.0),
    ),
)
