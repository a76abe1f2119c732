"""Build a tiny, random-weight, SDXL-shaped diffusers folder for tests and the offline demo.

The folder has the standard diffusers layout (model_index.json, unet/, vae/, text_encoder/,
text_encoder_2/, tokenizer/, tokenizer_2/, scheduler/), safetensors weights, a few MiB in all, and
loads with `ModularPipeline.from_pretrained(folder)` without any network access. The weights are
random but seeded: two builds with the same seed are byte-identical. Nothing is downloaded.

    python scripts/build_tiny_sdxl.py OUT_DIR [--seed N]

If OUT_DIR already holds a complete build by this builder version with the same seed, the call
returns at once (it does not even import torch), so it can run before every start. A build is
written to a temporary folder next to OUT_DIR and renamed into place, so an interrupted build never
leaves a half-written OUT_DIR behind.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

logger = logging.getLogger("build_tiny_sdxl")

# Bump when anything below changes what is written, so existing folders get rebuilt.
BUILDER_VERSION = 2
MARKER = "tiny_model.json"
COMPONENTS = ("unet", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler")

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


def _read_marker(out_dir: Path) -> dict | None:
    try:
        return json.loads((out_dir / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_complete(out_dir: Path, seed: int) -> bool:
    """True when `out_dir` holds a complete build by this builder version with `seed`."""
    marker = _read_marker(out_dir)
    if not isinstance(marker, dict):
        return False
    if marker.get("builder_version") != BUILDER_VERSION or marker.get("seed") != seed:
        return False
    files = marker.get("files")
    if not isinstance(files, dict) or not files:
        return False
    for rel, size in files.items():
        path = out_dir / rel
        if not path.is_file() or path.stat().st_size != size:
            return False
    return True


def _write_components(target: Path, seed: int) -> None:
    """Construct the seeded random components and `save_pretrained` them into `target`."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    # A byte-level vocabulary with no merges: every prompt tokenizes (one token per byte), with no
    # vocab/merges files to download.
    specials = ["<|startoftext|>", "<|endoftext|>"]
    chars = sorted(ByteLevel.alphabet())
    vocab = {token: i for i, token in enumerate(specials + chars + [c + "</w>" for c in chars])}
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)
    text_config = dict(
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
        hidden_size=32,
        intermediate_size=37,
        layer_norm_eps=1e-5,
        num_attention_heads=4,
        num_hidden_layers=2,
        vocab_size=len(vocab),
        hidden_act="gelu",
        projection_dim=32,
        max_position_embeddings=77,
    )

    # Seed each model separately and leave the caller's global RNG state as it was.
    base = seed * 100
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(base + 1)
        text_encoder = CLIPTextModel(CLIPTextConfig(**text_config))
        torch.manual_seed(base + 2)
        text_encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig(**text_config))
        torch.manual_seed(base + 3)
        unet = UNet2DConditionModel(
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
            addition_time_embed_dim=8,
            transformer_layers_per_block=(1, 1),
            projection_class_embeddings_input_dim=6 * 8 + 32,
            cross_attention_dim=64,
            norm_num_groups=1,
        )
        torch.manual_seed(base + 4)
        vae = AutoencoderKL(
            block_out_channels=[32, 64],
            in_channels=3,
            out_channels=3,
            down_block_types=["DownEncoderBlock2D"] * 2,
            up_block_types=["UpDecoderBlock2D"] * 2,
            latent_channels=4,
            sample_size=64,
            norm_num_groups=32,
        )

    with torch.no_grad():
        unet.conv_out.weight.mul_(UNET_CONV_OUT_SCALE)
        unet.conv_out.bias.mul_(UNET_CONV_OUT_SCALE)
        for name, module in unet.named_modules():
            if name.endswith("attn2.to_v"):
                module.weight.mul_(UNET_ATTN2_SCALE)
        unet.add_embedding.linear_1.weight.mul_(UNET_ADD_EMBED_SCALE)
        moments = vae.config.latent_channels  # quant_conv rows: [mean..., logvar...]
        vae.quant_conv.weight[:moments].mul_(VAE_LATENT_MEAN_SCALE)
        vae.quant_conv.bias[:moments].mul_(VAE_LATENT_MEAN_SCALE)
        vae.quant_conv.weight[moments:].zero_()
        vae.quant_conv.bias[moments:].fill_(VAE_LOGVAR)

    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        steps_offset=1,
        timestep_spacing="leading",
    )
    pipe = StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        unet=unet,
        scheduler=scheduler,
        image_encoder=None,
        feature_extractor=None,
        force_zeros_for_empty_prompt=True,
    )
    pipe.save_pretrained(str(target), safe_serialization=True)

    # `[null, null]` entries (image_encoder, feature_extractor) make ModularPipeline.load_components()
    # log a long warning with a traceback; the components are optional, so leave them out.
    index_path = target / "model_index.json"
    index = json.loads(index_path.read_text(encoding="utf-8"))
    index = {key: value for key, value in index.items() if value != [None, None]}
    index_path.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _normalize_permissions(root: Path) -> None:
    # mkdtemp makes a 0700 folder and some savers write 0600 files; make the result readable like
    # any other checkout folder.
    os.chmod(root, 0o755)
    for path in root.rglob("*"):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)


def build_tiny_sdxl(out_dir: Path, seed: int = 0) -> Path:
    """Write the tiny SDXL folder to `out_dir` (or keep it, when already built) and return its path.

    Raises FileExistsError when `out_dir` exists, is not empty and was not made by this script.
    """
    out_dir = Path(out_dir).absolute()
    if is_complete(out_dir, seed):
        logger.debug("%s already holds tiny SDXL seed %d (builder v%d)", out_dir, seed, BUILDER_VERSION)
        return out_dir
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and _read_marker(out_dir) is None:
        raise FileExistsError(f"{out_dir} is not empty and was not made by {Path(__file__).name}; not replacing it")

    started = time.monotonic()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.building-", dir=out_dir.parent))
    try:
        _write_components(staging, seed)
        files = {
            path.relative_to(staging).as_posix(): path.stat().st_size
            for path in sorted(staging.rglob("*"))
            if path.is_file()
        }
        marker = {"builder_version": BUILDER_VERSION, "seed": seed, "files": files}
        # Written last: a folder with a marker is a finished one.
        (staging / MARKER).write_text(json.dumps(marker, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        _normalize_permissions(staging)

        old = None
        if out_dir.exists():
            # A previous build (another seed or builder version), or an empty folder: move it aside first.
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
            out_dir.rename(old / "previous")
        staging.rename(out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("built tiny SDXL (seed %d) in %s in %.2f s", seed, out_dir, time.monotonic() - started)
    return out_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", type=Path, help="folder to write (kept as is when already built)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the random weights (default 0)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[tiny-sdxl] %(message)s")
    try:
        path = build_tiny_sdxl(args.out_dir, seed=args.seed)
    except FileExistsError as error:
        logger.error("%s", error)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
