"""Build a tiny, random-weight, Wan 2.1 (or Wan 2.2) text-to-video diffusers folder for tests.

The folder has the standard diffusers layout of `WanPipeline` (Wan 2.1 T2V): model_index.json,
transformer/ (WanTransformer3DModel), vae/ (AutoencoderKLWan), text_encoder/ (UMT5EncoderModel),
tokenizer/ (a T5 tokenizer built in memory), scheduler/ (UniPCMultistepScheduler with the flow-matching
settings of the Wan 2.1 checkpoints); safetensors weights, a few MiB in all. It loads with
`ModularPipeline.from_pretrained(folder)` (WanModularPipeline with WanBlocks) without any network access.
The weights are random but seeded: two builds with the same seed are byte-identical. Nothing is
downloaded.

The Wan 2.2 variant (`wan22=True`, `--wan22`, kind "tiny-wan22") is the layout of the Wan 2.2 T2V A14B
checkpoints: the same folder plus transformer_2/ (a second WanTransformer3DModel of the same shape with
other random weights, the low-noise expert) and `boundary_ratio` in model_index.json. diffusers resolves a
folder with a `boundary_ratio` to Wan22ModularPipeline (Wan22Blocks), whose denoising loop runs
`transformer` for timesteps t >= boundary_ratio * 1000 and `transformer_2` below.

    python scripts/build_tiny_wan.py OUT_DIR [--seed N] [--wan22]

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
KIND_WAN22 = "tiny-wan22"
COMPONENTS = ("transformer", "vae", "text_encoder", "tokenizer", "scheduler")
COMPONENTS_WAN22 = (*COMPONENTS, "transformer_2")
# Where Wan 2.2 switches from the high-noise transformer to the low-noise transformer_2, as a fraction of
# the 1000 training timesteps: 0.875 as in Wan 2.2 T2V A14B.
BOUNDARY_RATIO = 0.875

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


def _tiny_transformer():
    """A tiny WanTransformer3DModel with random weights from torch's global RNG (seed it first)."""
    from diffusers import WanTransformer3DModel

    return WanTransformer3DModel(
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


def _scale_transformer(transformer) -> None:
    """Apply the TRANSFORMER_* factors above in place (call under torch.no_grad())."""
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


def _write_components(target: Path, seed: int, wan22: bool = False) -> None:
    """Construct the seeded random components and `save_pretrained` them into `target` (with a second
    transformer and a boundary ratio when `wan22`)."""
    import torch
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline
    from transformers import UMT5Config, UMT5EncoderModel

    tokenizer = umt5_tokenizer()
    text_config = UMT5Config(**t5_encoder_config(tokenizer, TEXT_HIDDEN))

    # Seed each model separately and leave the caller's global RNG state as it was.
    base = seed * 100
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(base + 1)
        text_encoder = UMT5EncoderModel(text_config)
        torch.manual_seed(base + 2)
        transformer = _tiny_transformer()
        torch.manual_seed(base + 3)
        vae = AutoencoderKLWan(
            base_dim=8,
            z_dim=LATENT_CHANNELS,
            dim_mult=[1, 1, 1, 1],
            num_res_blocks=1,
            temperal_downsample=[False, True, True],
        )
        transformer_2 = None
        if wan22:
            # Seeded after the Wan 2.1 components, so those are the same in both variants.
            torch.manual_seed(base + 4)
            transformer_2 = _tiny_transformer()

    with torch.no_grad():
        for model in (transformer, transformer_2):
            if model is not None:
                _scale_transformer(model)
        vae.decoder.conv_out.weight.mul_(VAE_DECODER_OUT_SCALE)
        vae.decoder.conv_out.bias.mul_(VAE_DECODER_OUT_SCALE)

    # The scheduler config of the Wan 2.1 T2V checkpoints (UniPC on flow-matching sigmas, shift 3), for
    # both variants.
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
        transformer_2=transformer_2,
        boundary_ratio=BOUNDARY_RATIO if wan22 else None,
    )
    pipe.save_pretrained(str(target), safe_serialization=True)

    drop_empty_index_entries(target)


def _write_wan22(target: Path, seed: int) -> None:
    _write_components(target, seed, wan22=True)


def build_tiny_wan(out_dir: Path, seed: int = 0, wan22: bool = False) -> Path:
    """Write the tiny Wan 2.1 T2V folder (the Wan 2.2 T2V one, with two transformers, when `wan22`) to
    `out_dir`, or keep it when already built, and return its path.

    Raises FileExistsError when `out_dir` exists, is not empty and was not made by a tiny-model builder.
    """
    if wan22:
        return build_folder(out_dir, seed, kind=KIND_WAN22, builder_version=BUILDER_VERSION, write=_write_wan22)
    return build_folder(out_dir, seed, kind=KIND, builder_version=BUILDER_VERSION, write=_write_components)


def build_tiny_wan22(out_dir: Path, seed: int = 0) -> Path:
    """`build_tiny_wan(out_dir, seed, wan22=True)`."""
    return build_tiny_wan(out_dir, seed=seed, wan22=True)


def is_complete(out_dir: Path, seed: int, wan22: bool = False) -> bool:
    return tiny_build.is_complete(out_dir, seed, BUILDER_VERSION, KIND_WAN22 if wan22 else KIND)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--wan22" in args:
        args.remove("--wan22")
        return run_builder_cli(KIND_WAN22, build_tiny_wan22, __doc__, args)
    return run_builder_cli(KIND, build_tiny_wan, __doc__, args)


if __name__ == "__main__":
    sys.exit(main())
