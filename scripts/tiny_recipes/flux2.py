"""The tiny, random-weight, Flux.2 Klein-shaped diffusers folder for tests and the offline demo.

The folder has the standard diffusers layout of `Flux2KleinPipeline` (model_index.json with
`is_distilled: true`, transformer/ (Flux2Transformer2DModel), vae/ (AutoencoderKLFlux2), text_encoder/
(Qwen3ForCausalLM), tokenizer/, scheduler/), safetensors weights, a few MiB in all, and loads with
`ModularPipeline.from_pretrained(folder)` (Flux2KleinModularPipeline, `Flux2KleinAutoBlocks`: the
distilled Klein, one transformer pass a step, no guidance) without any network access. The weights are
random but seeded: two builds with the same seed are byte-identical. Nothing is downloaded: the Qwen2-style
tokenizer is a byte-level vocabulary built in memory, with a minimal chat template (Klein encodes prompts
through `apply_chat_template`).

    python scripts/build_tiny.py tiny-flux2-klein OUT_DIR [--seed N]

Klein rather than Flux.2 dev (`Flux2AutoBlocks`): dev's text encoder is Mistral-3 VL
(Mistral3ForConditionalGeneration: a vision tower, a projector and a language model) behind an `AutoProcessor`
folder (a Pixtral processor: an image processor and a tokenizer whose chat template takes lists of content
parts), all of which would have to be made tiny; Klein's is a plain Qwen3 causal LM with a chat template,
which builds in memory like Z-Image's.

The shapes follow Flux.2 where the pipeline or ComfyUI depend on them: a VAE that downsamples by 8 (four
blocks) with 32 latent channels, which the blocks patchify 2x2 into 128 channels a token (the
transformer's `in_channels`; ComfyUI's `Flux2` latent format, used for previews, is those 128 channels);
the VAE's batch norm over the 128 patchified channels that the decoder undoes; a Qwen3 text encoder of
28 layers, because the Klein text-encoder step stacks `hidden_states[9, 18, 27]` (its default
`text_encoder_out_layers`, a tuple no node shows) into the transformer's `joint_attention_dim` (3x the
hidden size): 27 layers would be the least, 28 make entry 27 a layer's output as in the real 36-layer
Qwen3 (the last entry is the final norm's); 4 RoPE axes (T, H, W, L) and no guidance embedding (Klein is
guidance-distilled); and Flux.2's dynamically shifted flow-match Euler scheduler (the blocks pass it an
empirical `mu`). 64x64 images are 8x8 latents, 4x4 = 16 image tokens. Heights and widths must be
multiples of 16.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tiny_build import qwen_tokenizer

from tiny_recipes import Model, Recipe, Scale, Scheduler
from tiny_recipes.flux import SCHEDULER as FLUX_SCHEDULER

LATENT_CHANNELS = 32  # as in Flux.2's VAE; the transformer sees them patchified 2x2, as 128 channels a token
TEXT_HIDDEN_SIZE = 16
# The Klein text-encoder step's default `text_encoder_out_layers`: the hidden states it stacks.
TEXT_OUT_LAYERS = (9, 18, 27)
TEXT_LAYERS = 28  # hidden_states has layers + 1 entries, the last after the final norm

# Random init gives a transformer whose velocity hardly depends on the prompt (images of two prompts differ
# by ~0.001 on a 0..1 scale): the text reaches the image tokens only through joint attention, which is
# near-uniform over 512 text tokens (mostly padding) and whose output is gated by a small random AdaLN
# modulation. These factors, found by trying (tests/tools/test_tiny_flux2.py checks the result), make
# prompts and seeds give visibly different 64x64 images (mean pixel difference ~0.08 between prompts,
# ~0.2 between seeds):
# - the RMSNorm weights of the attention queries and keys, so attention is sharp instead of uniform;
TRANSFORMER_QK_NORM_SCALE = 4.0
# - the text stream's attention values and the image stream's attention output in the double-stream block,
#   so what the image tokens take from the text moves them;
TRANSFORMER_TEXT_VALUE_SCALE = 4.0
TRANSFORMER_IMAGE_ATTN_OUT_SCALE = 4.0
# - the image-stream AdaLN modulations (shift, scale and the gates of the attention and MLP outputs);
TRANSFORMER_MODULATION_SCALE = 3.0
# - the output projection (the predicted velocity itself);
TRANSFORMER_PROJ_OUT_SCALE = 3.0
# - the decoder's last conv, for contrast (a few % of the pixels clip at 0 or 1).
VAE_DECODER_OUT_SCALE = 1.5


def text_encoder_config(tokenizers: Mapping[str, Any]) -> dict:
    """A tiny Qwen3 causal LM over the recipe's tokenizer, deep enough for `TEXT_OUT_LAYERS`."""
    tokenizer = tokenizers["tokenizer"]
    return dict(
        vocab_size=len(tokenizer),
        hidden_size=TEXT_HIDDEN_SIZE,
        intermediate_size=32,
        num_hidden_layers=TEXT_LAYERS,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=8,
        max_position_embeddings=512,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,  # as in Qwen3-4B, Klein 4B's text encoder
    )


TRANSFORMER = Model(
    cls="diffusers.Flux2Transformer2DModel",
    seed=2,
    config=dict(
        patch_size=1,
        in_channels=LATENT_CHANNELS * 4,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=len(TEXT_OUT_LAYERS) * TEXT_HIDDEN_SIZE,
        timestep_guidance_channels=32,
        mlp_ratio=3.0,
        axes_dims_rope=(4, 4, 4, 4),  # T, H, W, L; sums to the head dim
        rope_theta=2000,
        guidance_embeds=False,
    ),
    tweaks=(
        Scale(
            params=r"(single_)?transformer_blocks\.\d+\.attn\.norm_(added_)?[qk]\.weight",
            factor=TRANSFORMER_QK_NORM_SCALE,
        ),
        # the double-stream blocks only ("single_transformer_blocks" does not match from the start)
        Scale(params=r"transformer_blocks\.\d+\.attn\.add_v_proj\.weight", factor=TRANSFORMER_TEXT_VALUE_SCALE),
        Scale(params=r"transformer_blocks\.\d+\.attn\.to_out\.0\.weight", factor=TRANSFORMER_IMAGE_ATTN_OUT_SCALE),
        Scale(
            params=r"(double_stream_modulation_img|single_stream_modulation)\.linear\.weight",
            factor=TRANSFORMER_MODULATION_SCALE,
        ),
        Scale(params=r"proj_out\.weight", factor=TRANSFORMER_PROJ_OUT_SCALE),
    ),
)
VAE = Model(
    cls="diffusers.AutoencoderKLFlux2",
    seed=3,
    config=dict(
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        block_out_channels=[16, 16, 32, 32],
        layers_per_block=1,
        latent_channels=LATENT_CHANNELS,
        norm_num_groups=8,
        sample_size=64,
    ),
    tweaks=(Scale(params=r"decoder\.conv_out\.weight", factor=VAE_DECODER_OUT_SCALE),),
)

FLUX2_KLEIN = Recipe(
    kind="tiny-flux2-klein",
    summary="Flux.2 Klein (distilled): Qwen3 text encoder with a chat template, flow-match Euler; text2image",
    builder_version=1,
    pipeline="diffusers.Flux2KleinPipeline",
    pipeline_config={"is_distilled": True},
    tokenizers={"tokenizer": qwen_tokenizer},
    models={
        "text_encoder": Model(
            cls="transformers.Qwen3ForCausalLM",
            config_cls="transformers.Qwen3Config",
            seed=1,
            config=text_encoder_config,
        ),
        "transformer": TRANSFORMER,
        "vae": VAE,
    },
    # Flux.2's scheduler config: the blocks compute the resolution-dependent shift (`mu`) themselves.
    scheduler=Scheduler(cls=FLUX_SCHEDULER.cls, config={**FLUX_SCHEDULER.config, "time_shift_type": "exponential"}),
)
