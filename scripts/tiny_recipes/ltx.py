"""The tiny, random-weight, LTX-Video text-to-video diffusers folder, for tests.

The tiny-ltx folder has the standard diffusers layout of `LTXPipeline` (LTX-Video 0.9.0): model_index.json,
transformer/ (LTXVideoTransformer3DModel), vae/ (AutoencoderKLLTXVideo), text_encoder/ (T5EncoderModel),
tokenizer/ (a T5 tokenizer built in memory, 128 tokens long as LTX-Video's), scheduler/
(FlowMatchEulerDiscreteScheduler with LTX-Video's settings); safetensors weights, under 1 MiB in all. It
loads with `ModularPipeline.from_pretrained(folder)` (LTXModularPipeline with LTXAutoBlocks) without any
network access. The weights are random but seeded: two builds with the same seed are byte-identical.
Nothing is downloaded.

    python scripts/build_tiny.py tiny-ltx OUT_DIR [--seed N]

The shapes follow LTX-Video where the pipeline or ComfyUI depends on them:
- 128 latent channels, which ComfyUI's `LTXV` latent format (its latent2rgb preview factors) expects;
- a VAE that compresses 32x in space and 8x in time like LTX-Video's (a 4x4 patchify, then three blocks
  that halve frames, rows and columns, and a fourth that does not), so heights and widths are multiples
  of 32 and `num_frames - 1` a multiple of 8: 9 frames of 64x64 pixels are 2 latent frames of 2x2, the
  smallest video with more than one latent frame;
- a transformer of patch size 1 (as LTX-Video's: one token per latent voxel, the layout of the modular
  blocks' `LTXVideoPachifier`), so the denoising loop works on [B, frames*rows*columns, 128] tokens;
- a VAE without timestep conditioning (0.9.0's; 0.9.1 and later condition the decoder on a noise level
  and draw decode noise from the generator), so the decode step uses no random numbers.
8 steps of a 9-frame 64x64 video take ~0.1 s in plain diffusers on one thread. It needs at least 2 steps,
as diffusers' LTX pipelines do with LTX-Video's scheduler: its sigmas (1 .. 1/steps) are stretched to end
at `shift_terminal` 0.1, a division by zero for one step (NaN timesteps, then an IndexError in step()).
"""

from __future__ import annotations

from functools import partial

from tiny_build import t5_tokenizer

from tiny_recipes import Model, Recipe, Scale, Scheduler, TieRows, text_encoders

LATENT_CHANNELS = 128  # as in LTX-Video (the VAE's latent_channels, the transformer's in/out channels)
TEXT_HIDDEN = 32  # the T5 token embeddings (the transformer's caption_channels)
HEADS, HEAD_DIM = 2, 12  # inner width 24: divisible by 6, so the 3D RoPE needs no padding
MAX_SEQUENCE_LENGTH = 128  # LTX-Video's tokenizer length (the blocks' max_sequence_length default)

# Random init gives a transformer whose velocity depends little on the prompt (a 64x64 video changes by
# ~0.017 between prompts, against ~0.13 between seeds): the text reaches it only through cross-attention
# with near-uniform weights. These factors, found by trying (tests/tools/test_tiny_ltx.py checks the
# result), make prompts and seeds give visibly different videos (mean pixel difference ~0.1 each):
# - the RMSNorm weights of the cross-attention queries and keys, so attention picks out prompt tokens;
TRANSFORMER_CROSS_QK_NORM_SCALE = 4.0
# - the cross-attention values, so what it picks out moves the hidden states;
TRANSFORMER_CROSS_VALUE_SCALE = 4.0
# - the caption projection's output, so the prompt tokens differ more from one another;
TRANSFORMER_CAPTION_SCALE = 4.0
# - the output projection (the predicted velocity itself).
TRANSFORMER_PROJ_OUT_SCALE = 2.0
CROSS_ATTENTION = r"transformer_blocks\.\d+\.attn2\."  # the parameter names' prefix in every block
# The random decoder gives enough contrast (pixel std ~0.16, 0.2% clipped), but its last conv makes the 4x4
# pixels of each patch (its 16 output channels per colour, un-patchified) independent: white noise, which
# H.264 in yuv420p (core Save Video) wipes out (~0.5 correlation between a saved frame and its PNG). Tied
# rows make each patch one colour: frames of 16x16 patches, which survive H.264 (correlation ~0.95).
VAE_PATCH_PIXELS = 4 * 4  # the decoder's patch_size squared (patch_size_t is 1)

VAE_BLOCKS = (8, 8, 8, 8)
VAE_SCALING = (True, True, True, False)  # LTX-Video 0.9.0's: 3 of the 4 blocks downsample 2x in space and time

LTX = Recipe(
    kind="tiny-ltx",
    summary="LTX-Video 0.9.0 T2V: T5, LTX transformer, LTX VAE (32x, 8x), flow-match Euler; 9-frame 64x64 videos",
    builder_version=1,
    pipeline="diffusers.LTXPipeline",
    tokenizers={"tokenizer": partial(t5_tokenizer, model_max_length=MAX_SEQUENCE_LENGTH)},
    models={
        "text_encoder": text_encoders.t5(seed=1, tokenizer="tokenizer", d_model=TEXT_HIDDEN),
        "transformer": Model(
            cls="diffusers.LTXVideoTransformer3DModel",
            seed=2,
            config=dict(
                in_channels=LATENT_CHANNELS,
                out_channels=LATENT_CHANNELS,
                patch_size=1,
                patch_size_t=1,
                num_attention_heads=HEADS,
                attention_head_dim=HEAD_DIM,
                cross_attention_dim=HEADS * HEAD_DIM,  # the caption projection's width (the inner width)
                num_layers=2,
                caption_channels=TEXT_HIDDEN,
                qk_norm="rms_norm_across_heads",
            ),
            tweaks=(
                Scale(params=CROSS_ATTENTION + r"norm_[qk]\.weight", factor=TRANSFORMER_CROSS_QK_NORM_SCALE),
                Scale(params=CROSS_ATTENTION + r"to_v\.(weight|bias)", factor=TRANSFORMER_CROSS_VALUE_SCALE),
                Scale(params=r"caption_projection\.linear_2\.(weight|bias)", factor=TRANSFORMER_CAPTION_SCALE),
                Scale(params=r"proj_out\.(weight|bias)", factor=TRANSFORMER_PROJ_OUT_SCALE),
            ),
        ),
        "vae": Model(
            cls="diffusers.AutoencoderKLLTXVideo",
            seed=3,
            config=dict(
                latent_channels=LATENT_CHANNELS,
                block_out_channels=VAE_BLOCKS,
                decoder_block_out_channels=VAE_BLOCKS,
                layers_per_block=(1, 1, 1, 1, 1),  # 4 down blocks and the mid block
                decoder_layers_per_block=(1, 1, 1, 1, 1),
                spatio_temporal_scaling=VAE_SCALING,
                decoder_spatio_temporal_scaling=VAE_SCALING,
                decoder_inject_noise=(False,) * 5,
                patch_size=4,
                patch_size_t=1,
                timestep_conditioning=False,
            ),
            tweaks=(TieRows(params=r"decoder\.conv_out\.conv\.(weight|bias)", group=VAE_PATCH_PIXELS),),
        ),
    },
    # The scheduler config of the LTX-Video checkpoints: sigmas shifted by the video's token count
    # (exponential time shift between base_shift at 1024 tokens and max_shift at 4096), stretched so the
    # last one is 0.1.
    scheduler=Scheduler(
        cls="diffusers.FlowMatchEulerDiscreteScheduler",
        config=dict(
            num_train_timesteps=1000,
            shift=1.0,
            use_dynamic_shifting=True,
            base_shift=0.95,
            max_shift=2.05,
            base_image_seq_len=1024,
            max_image_seq_len=4096,
            shift_terminal=0.1,
        ),
    ),
)
