"""The tiny, random-weight, Helios text-to-video diffusers folder, for tests.

The tiny-helios folder has the standard diffusers layout of `HeliosPipeline` (the Helios-Base
checkpoint's: one resolution per chunk): model_index.json, transformer/ (HeliosTransformer3DModel),
vae/ (AutoencoderKLWan, the Wan 2.1 VAE), text_encoder/ (UMT5EncoderModel), tokenizer/ (a T5 tokenizer
built in memory), scheduler/ (HeliosScheduler); safetensors weights, a few MiB in all. It loads with
`ModularPipeline.from_pretrained(folder)` (HeliosModularPipeline with HeliosAutoBlocks) without any
network access. The weights are random but seeded: two builds with the same seed are byte-identical.
Nothing is downloaded.

    python scripts/build_tiny.py tiny-helios OUT_DIR [--seed N]

The shapes follow Helios where the pipeline depends on them: 16 latent channels, the Wan VAE that
downsamples by 8 in space and 4 in time, and a transformer that patchifies latents 1x2x2 with Helios'
multi-term memory patches (short history 1x2x2, mid 2x4x4, long 4x8x8), whose rotary dimensions add up to
the attention head width. The scheduler is Helios-Base's: one stage, UniPC on dynamically shifted flow
sigmas (`mu` from the chunk's token count). Helios generates a video chunk by chunk: each chunk is
`num_latent_frames_per_chunk` latent frames ((n - 1) * 4 + 1 video frames), denoised with the whole
timestep schedule against the history of the chunks before it, and the decoded chunks are concatenated
and trimmed to 4k + 1 frames. Heights and widths must be multiples of 16.
"""

from __future__ import annotations

from dataclasses import replace

from tiny_build import t5_tokenizer

from tiny_recipes import Model, Recipe, Scale, Scheduler, text_encoders
from tiny_recipes.wan import LATENT_CHANNELS, TEXT_HIDDEN, TRANSFORMER_TWEAKS
from tiny_recipes.wan import VAE as WAN_VAE

HEADS, HEAD_DIM = 2, 12
ROPE_DIM = (4, 4, 4)  # frames, rows, columns: their sum is the head width

# Random init gives what it gives tiny-wan (scripts/tiny_recipes/wan.py), whose blocks Helios' are: a
# velocity that hardly depends on the prompt (a 64x64 video changes by ~0.0003 between prompts; the text
# reaches the transformer only through cross-attention over 512 mostly-padding T5 tokens, with
# near-uniform attention weights) and low-contrast grey frames. tiny-wan's transformer tweaks
# (wan.TRANSFORMER_TWEAKS), checked by trying (tests/tools/test_tiny_helios.py checks the result), make
# prompts and seeds give visibly different videos (mean pixel difference ~0.08 between prompts, ~0.1
# between seeds); and
# - the decoder's last conv, for contrast (a few % of the pixels clip at 0 or 1; 3 rather than tiny-wan's
#   2 for this VAE of half tiny-wan's width).
VAE_DECODER_OUT_SCALE = 3.0

TRANSFORMER = Model(
    cls="diffusers.HeliosTransformer3DModel",
    seed=2,
    config=dict(
        patch_size=(1, 2, 2),
        num_attention_heads=HEADS,
        attention_head_dim=HEAD_DIM,
        in_channels=LATENT_CHANNELS,
        out_channels=LATENT_CHANNELS,
        text_dim=TEXT_HIDDEN,
        freq_dim=32,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_dim=ROPE_DIM,
        guidance_cross_attn=True,
        zero_history_timestep=True,
        has_multi_term_memory_patch=True,
        is_amplify_history=False,
    ),
    tweaks=TRANSFORMER_TWEAKS,
)

# The Wan 2.1 VAE's layout at half tiny-wan's width (base_dim 4): Helios decodes every chunk on its own, so
# the decoder runs once per chunk and is a large part of a run.
VAE = replace(
    WAN_VAE,
    config={**WAN_VAE.config, "base_dim": 4},
    tweaks=(Scale(params=r"decoder\.conv_out\.(weight|bias)", factor=VAE_DECODER_OUT_SCALE),),
)

HELIOS = Recipe(
    kind="tiny-helios",
    summary="Helios-Base T2V: UMT5, Helios transformer (chunks with history), Wan VAE, HeliosScheduler",
    builder_version=1,
    pipeline="diffusers.HeliosPipeline",
    tokenizers={"tokenizer": t5_tokenizer},
    models={
        "text_encoder": text_encoders.t5(seed=1, tokenizer="tokenizer", d_model=TEXT_HIDDEN, umt5=True),
        "transformer": TRANSFORMER,
        "vae": VAE,
    },
    # Helios-Base's scheduler: one stage over the whole schedule, UniPC (bh2, order 2) on flow sigmas
    # shifted by the chunk's `mu` (dynamic shifting, so `shift` stays 1).
    scheduler=Scheduler(
        cls="diffusers.HeliosScheduler",
        config=dict(stages=1, stage_range=[0, 1], use_dynamic_shifting=True, scheduler_type="unipc"),
    ),
)
