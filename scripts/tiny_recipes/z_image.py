"""The tiny, random-weight, Z-Image-shaped diffusers folder for tests and the offline demo.

The folder has the standard diffusers layout of `ZImagePipeline` (model_index.json, transformer/, vae/,
text_encoder/, tokenizer/, scheduler/), safetensors weights, a few MiB in all, and loads with
`ModularPipeline.from_pretrained(folder)` (diffusers' Z-Image modular pipeline, `ZImageAutoBlocks`)
without any network access. The weights are random but seeded: two builds with the same seed are
byte-identical. Nothing is downloaded: the Qwen2-style tokenizer is a byte-level vocabulary built in
memory, with a minimal chat template (Z-Image encodes prompts through `apply_chat_template`).

    python scripts/build_tiny.py tiny-z-image OUT_DIR [--seed N]

The shapes follow Z-Image where the pipeline depends on them: a 16-channel latent, an 8x VAE (four
blocks; the modular blocks hard-code a 16-pixel image grid, 8x VAE times the transformer's 2x2 patches)
with Z-Image's scaling/shift factors and no quant convs, a transformer with 2x2 patches whose caption
width is the text encoder's hidden size, and the shifted flow-match Euler scheduler. 64x64 images are
8x8 latents, 16 image tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tiny_build import qwen_tokenizer

from tiny_recipes import Model, Recipe, Scale, Scheduler
from tiny_recipes.flux import VAE_CONFIG as FLUX_VAE_CONFIG

TEXT_HIDDEN_SIZE = 32
LATENT_CHANNELS = 16

# Random init gives a transformer whose output hardly depends on the prompt: in every block the attention
# output (the only path by which caption tokens reach image tokens) is RMS-normalized and then gated by
# tanh of a small random adaLN output (~0.1), so the velocity is mostly a fixed function of the noisy
# latent. (Scaling the attention values or the caption embedding does nothing: the norms undo it.)
# Amplifying the normalized attention output of the joint image+caption layers and sharpening their
# attention (the q/k RMSNorm weights scale the logits) makes different prompts give visibly different
# 64x64 images; scaling the final projection makes the prediction itself stronger against the noise.
JOINT_ATTN_OUT_SCALE = 4.0
JOINT_QK_NORM_SCALE = 3.0
FINAL_LAYER_SCALE = 3.0


def text_encoder_config(tokenizers: Mapping[str, Any]) -> dict:
    """A tiny Qwen3 text encoder over the recipe's tokenizer."""
    tokenizer = tokenizers["tokenizer"]
    return dict(
        vocab_size=len(tokenizer),
        hidden_size=TEXT_HIDDEN_SIZE,
        intermediate_size=64,
        # Z-Image takes hidden_states[-2]: with 2 layers that is the first layer's output.
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=512,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )


TRANSFORMER = Model(
    cls="diffusers.ZImageTransformer2DModel",
    seed=2,
    config=dict(
        all_patch_size=(2,),
        all_f_patch_size=(1,),
        in_channels=LATENT_CHANNELS,
        dim=32,
        n_layers=2,
        n_refiner_layers=1,
        n_heads=2,
        n_kv_heads=2,
        norm_eps=1e-5,
        qk_norm=True,
        cap_feat_dim=TEXT_HIDDEN_SIZE,
        rope_theta=256.0,
        t_scale=1000.0,
        axes_dims=[8, 4, 4],  # sums to the head dim, 32 / 2
        # axis 0 holds caption positions (up to max_sequence_length=512 tokens) and the image's
        # frame index after them; axes 1 and 2 the image token rows and columns.
        axes_lens=[1024, 64, 64],
    ),
    tweaks=(
        # the joint layers only ("noise_refiner.N" and "context_refiner.N" do not match from the start)
        Scale(params=r"layers\.\d+\.attention_norm2\.weight", factor=JOINT_ATTN_OUT_SCALE),
        Scale(params=r"layers\.\d+\.attention\.norm_[qk]\.weight", factor=JOINT_QK_NORM_SCALE),
        Scale(params=r"all_final_layer\.[^.]+\.linear\.(weight|bias)", factor=FINAL_LAYER_SCALE),
    ),
)
# Z-Image's VAE is Flux's (16 latent channels, 8x, no quant convs, its scaling and shift), here with wider
# inner blocks.
VAE = Model(cls="diffusers.AutoencoderKL", seed=3, config={**FLUX_VAE_CONFIG, "block_out_channels": [16, 32, 32, 32]})

Z_IMAGE = Recipe(
    kind="tiny-z-image",
    summary="Z-Image: Qwen3 text encoder with a chat template, flow-match Euler (shift 3); text2image at 64x64",
    builder_version=1,
    pipeline="diffusers.ZImagePipeline",
    tokenizers={"tokenizer": qwen_tokenizer},
    models={
        "text_encoder": Model(
            cls="transformers.Qwen3Model", config_cls="transformers.Qwen3Config", seed=1, config=text_encoder_config
        ),
        "transformer": TRANSFORMER,
        "vae": VAE,
    },
    # Z-Image's scheduler: a fixed shift of 3, no resolution-dependent (dynamic) shifting.
    scheduler=Scheduler(
        cls="diffusers.FlowMatchEulerDiscreteScheduler",
        config=dict(num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=False),
    ),
)
