"""Build a tiny, random-weight, Wan 2.1 text-to-video diffusers folder for tests.

The folder has the standard diffusers layout of `WanPipeline` (Wan 2.1 T2V): model_index.json,
transformer/ (WanTransformer3DModel), vae/ (AutoencoderKLWan), text_encoder/ (UMT5EncoderModel),
tokenizer/ (a T5 tokenizer built in memory), scheduler/ (UniPCMultistepScheduler with the flow-matching
settings of the Wan 2.1 checkpoints); safetensors weights, a few MiB in all. It loads with
`ModularPipeline.from_pretrained(folder)` (WanModularPipeline with WanBlocks) without any network access.
The weights are random but seeded: two builds with the same seed are byte-identical. Nothing is
downloaded.

    python scripts/build_tiny_wan.py OUT_DIR [--seed N]

The shapes follow Wan 2.1 where the pipeline depends on them: 16 latent channels, a VAE that
downsamples by 8 in space and 4 in time (so 5 frames of 64x64 pixels are 2 latent frames of 8x8),
and a transformer that patchifies latents 1x2x2. Heights and widths must be multiples of 16 and
`num_frames - 1` a multiple of 4.

If OUT_DIR already holds a complete build by this builder version with the same seed, the call returns
at once (it does not even import torch). A build is written to a temporary folder next to OUT_DIR and
renamed into place, so an interrupted build never leaves a half-written OUT_DIR behind.
"""

from __future__ import annotations

import sys
from pathlib import Path

import tiny_build
from tiny_build import build_folder, drop_empty_index_entries, run_builder_cli, t5_encoder_config

# Bump when anything below changes what is written, so existing folders get rebuilt.
BUILDER_VERSION = 1
KIND = "tiny-wan"
COMPONENTS = ("transformer", "vae", "text_encoder", "tokenizer", "scheduler")

LATENT_CHANNELS = 16  # as in Wan 2.1 (the VAE's z_dim and the transformer's in/out channels)
TEXT_HIDDEN = 32  # the UMT5 token embeddings (the transformer's text_dim)

# Random init gives a transformer whose velocity hardly depends on the prompt (a 64x64 video changes by
# ~0.0002 between prompts): the text reaches it only through cross-attention over 512 T5 tokens, nearly
# all of them zero padding, with near-uniform attention weights. And the random decoder gives low-contrast
# grey frames. These factors, found by trying (tests/unit/test_tiny_wan.py checks the result), make prompts
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


def umt5_vocab() -> list[tuple[str, float]]:
    """A T5-style Unigram vocabulary (token, log-probability) of single characters: ids 0, 1 and 2 are
    <pad>, </s> and <unk> as in (U)MT5, then the word-start marker "▁", every printable ASCII character
    and every "▁"-prefixed one. Every ASCII prompt tokenizes (about one token per character); other
    characters become <unk>."""
    import string

    chars = [char for char in string.printable if not char.isspace()]
    specials = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    return specials + [(char, -3.0) for char in chars] + [("\u2581" + char, -3.0) for char in chars]


def umt5_tokenizer(model_max_length: int = 512):
    """The tokenizer Wan's text encoder step calls (`AutoTokenizer`; google/umt5-xxl's is a T5 Unigram
    tokenizer), built in memory from `umt5_vocab()`: no spiece.model or tokenizer.json to download.
    `save_pretrained` writes tokenizer.json and tokenizer_config.json, which `AutoTokenizer` reads back."""
    from transformers import T5Tokenizer

    return T5Tokenizer(vocab=umt5_vocab(), extra_ids=0, model_max_length=model_max_length)


def _write_components(target: Path, seed: int) -> None:
    """Construct the seeded random components and `save_pretrained` them into `target`."""
    import torch
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    tokenizer = umt5_tokenizer()
    text_config = UMT5Config(**t5_encoder_config(tokenizer, TEXT_HIDDEN))

    # Seed each model separately and leave the caller's global RNG state as it was.
    base = seed * 100
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(base + 1)
        text_encoder = UMT5EncoderModel(text_config)
        torch.manual_seed(base + 2)
        transformer = WanTransformer3DModel(
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
        )
        torch.manual_seed(base + 3)
        vae = AutoencoderKLWan(
            base_dim=8,
            z_dim=LATENT_CHANNELS,
            dim_mult=[1, 1, 1, 1],
            num_res_blocks=1,
            temperal_downsample=[False, True, True],
        )

    with torch.no_grad():
        for block in transformer.blocks:
            block.attn2.norm_q.weight.mul_(TRANSFORMER_CROSS_QK_NORM_SCALE)
            block.attn2.norm_k.weight.mul_(TRANSFORMER_CROSS_QK_NORM_SCALE)
            block.attn2.to_v.weight.mul_(TRANSFORMER_CROSS_VALUE_SCALE)
            block.attn2.to_v.bias.mul_(TRANSFORMER_CROSS_VALUE_SCALE)
        text_embedder = transformer.condition_embedder.text_embedder.linear_2
        text_embedder.weight.mul_(TRANSFORMER_TEXT_EMBED_SCALE)
        text_embedder.bias.mul_(TRANSFORMER_TEXT_EMBED_SCALE)
        transformer.proj_out.weight.mul_(TRANSFORMER_PROJ_OUT_SCALE)
        transformer.proj_out.bias.mul_(TRANSFORMER_PROJ_OUT_SCALE)
        vae.decoder.conv_out.weight.mul_(VAE_DECODER_OUT_SCALE)
        vae.decoder.conv_out.bias.mul_(VAE_DECODER_OUT_SCALE)

    # The scheduler config of the Wan 2.1 T2V checkpoints (UniPC on flow-matching sigmas, shift 3).
    scheduler = UniPCMultistepScheduler(
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
    )
    pipe = WanPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        scheduler=scheduler,
        transformer=transformer,
        transformer_2=None,
    )
    pipe.save_pretrained(str(target), safe_serialization=True)

    drop_empty_index_entries(target)


def build_tiny_wan(out_dir: Path, seed: int = 0) -> Path:
    """Write the tiny Wan 2.1 T2V folder to `out_dir` (or keep it, when already built) and return its path.

    Raises FileExistsError when `out_dir` exists, is not empty and was not made by a tiny-model builder.
    """
    return build_folder(out_dir, seed, kind=KIND, builder_version=BUILDER_VERSION, write=_write_components)


def is_complete(out_dir: Path, seed: int) -> bool:
    return tiny_build.is_complete(out_dir, seed, BUILDER_VERSION, KIND)


if __name__ == "__main__":
    sys.exit(run_builder_cli(KIND, build_tiny_wan, __doc__))
