"""Build a tiny, random-weight, Z-Image-shaped diffusers folder for tests and the offline demo.

The folder has the standard diffusers layout of `ZImagePipeline` (model_index.json, transformer/, vae/,
text_encoder/, tokenizer/, scheduler/), safetensors weights, a few MiB in all, and loads with
`ModularPipeline.from_pretrained(folder)` (diffusers' Z-Image modular pipeline, `ZImageAutoBlocks`)
without any network access. The weights are random but seeded: two builds with the same seed are
byte-identical. Nothing is downloaded: the Qwen2-style tokenizer is a byte-level vocabulary built in
memory, with a minimal chat template (Z-Image encodes prompts through `apply_chat_template`).

    python scripts/build_tiny_z_image.py OUT_DIR [--seed N]

The shapes follow Z-Image where the pipeline depends on them: a 16-channel latent, an 8x VAE (four
blocks; the modular blocks hard-code a 16-pixel image grid, 8x VAE times the transformer's 2x2 patches)
with Z-Image's scaling/shift factors and no quant convs, a transformer with 2x2 patches whose caption
width is the text encoder's hidden size, and the shifted flow-match Euler scheduler. 64x64 images are
8x8 latents, 16 image tokens.

If OUT_DIR already holds a complete build by this builder version with the same seed, the call returns
at once (it does not even import torch). A build is written to a temporary folder next to OUT_DIR and
renamed into place, so an interrupted build never leaves a half-written OUT_DIR behind.
"""

from __future__ import annotations

import sys
from pathlib import Path

import tiny_build
from tiny_build import build_folder, byte_level_vocab, drop_empty_index_entries, run_builder_cli

KIND = "tiny-z-image"
# Bump when anything below changes what is written, so existing folders get rebuilt.
BUILDER_VERSION = 1
COMPONENTS = ("transformer", "vae", "text_encoder", "tokenizer", "scheduler")

CHAT_SPECIAL_TOKENS = ("<|im_start|>", "<|im_end|>")
# The Qwen3 chat layout, minus everything the pipeline does not use (system prompts, tools, thinking).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
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


def qwen_tokenizer(model_max_length: int = 512):
    """A Qwen2 BPE tokenizer over a byte-level vocabulary with no merges (one token per byte), plus
    Qwen's chat special tokens and a minimal chat template. Pad, eos and unk are <|endoftext|>."""
    from transformers import Qwen2Tokenizer

    vocab = byte_level_vocab()
    for token in CHAT_SPECIAL_TOKENS:
        vocab[token] = len(vocab)
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=[],
        model_max_length=model_max_length,
        additional_special_tokens=list(CHAT_SPECIAL_TOKENS),
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _write_components(target: Path, seed: int) -> None:
    """Construct the seeded random components and `save_pretrained` them into `target`."""
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, ZImagePipeline, ZImageTransformer2DModel
    from transformers import Qwen3Config, Qwen3Model

    tokenizer = qwen_tokenizer()
    text_config = Qwen3Config(
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

    # Seed each model separately and leave the caller's global RNG state as it was.
    base = seed * 100
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(base + 1)
        text_encoder = Qwen3Model(text_config)
        torch.manual_seed(base + 2)
        transformer = ZImageTransformer2DModel(
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
        )
        torch.manual_seed(base + 3)
        # Z-Image's VAE (the Flux one): 16 latent channels, 8x, no quant convs, its scaling and shift.
        vae = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            down_block_types=["DownEncoderBlock2D"] * 4,
            up_block_types=["UpDecoderBlock2D"] * 4,
            block_out_channels=[16, 32, 32, 32],
            layers_per_block=1,
            latent_channels=LATENT_CHANNELS,
            norm_num_groups=8,
            sample_size=64,
            scaling_factor=0.3611,
            shift_factor=0.1159,
            use_quant_conv=False,
            use_post_quant_conv=False,
        )

    with torch.no_grad():
        for block in transformer.layers:
            block.attention_norm2.weight.mul_(JOINT_ATTN_OUT_SCALE)
            block.attention.norm_q.weight.mul_(JOINT_QK_NORM_SCALE)
            block.attention.norm_k.weight.mul_(JOINT_QK_NORM_SCALE)
        for final_layer in transformer.all_final_layer.values():
            final_layer.linear.weight.mul_(FINAL_LAYER_SCALE)
            final_layer.linear.bias.mul_(FINAL_LAYER_SCALE)

    # Z-Image's scheduler: a fixed shift of 3, no resolution-dependent (dynamic) shifting.
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=False)
    pipe = ZImagePipeline(
        scheduler=scheduler,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
    )
    pipe.save_pretrained(str(target), safe_serialization=True)

    drop_empty_index_entries(target)


def build_tiny_z_image(out_dir: Path, seed: int = 0) -> Path:
    """Write the tiny Z-Image folder to `out_dir` (or keep it, when already built) and return its path.

    Raises FileExistsError when `out_dir` exists, is not empty and was not made by a tiny builder.
    """
    return build_folder(out_dir, seed, kind=KIND, builder_version=BUILDER_VERSION, write=_write_components)


def is_complete(out_dir: Path, seed: int) -> bool:
    return tiny_build.is_complete(out_dir, seed, BUILDER_VERSION, KIND)


if __name__ == "__main__":
    sys.exit(run_builder_cli(KIND, build_tiny_z_image, __doc__))
