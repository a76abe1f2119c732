"""Tiny seeded LoRA files for the tiny models, in the formats users have: diffusers/PEFT (`<component>.<module>
.lora_A.weight`, what diffusers' `save_lora_weights` writes) and kohya (`lora_unet_...` / `lora_te1_...` with
`.lora_down`, `.lora_up`, `.alpha`, what kohya's trainer writes; for Flux in the original `double_blocks`
layout with fused qkv), and DoRA for SDXL in both (PEFT's `lora_magnitude_vector`, LyCORIS'
`dora_scale`). Written from the model folder (the module shapes; the DoRA magnitudes from the weights' row
norms), byte-identical for a seed, into ComfyUI's `models/loras`:

    python scripts/tiny_loras.py MODELS_DIR LORAS_DIR      # MODELS_DIR holds tiny-sdxl/ and tiny-flux/

Nothing is downloaded. The factors are large enough that a LoRA visibly changes a tiny model's image.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger("tiny_loras")

UNET_TARGETS = ("attn1.to_q", "attn1.to_v", "attn2.to_k", "attn2.to_out.0")
TEXT_TARGETS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj")  # as kohya trains
FLUX_TARGETS = ("attn.to_q", "attn.to_k", "attn.to_v", "attn.add_q_proj", "proj_out")
SCALE = 0.5


def linears(module, targets: tuple[str, ...]) -> list[tuple[str, object]]:
    import torch

    return [(n, m) for n, m in module.named_modules() if n.endswith(targets) and isinstance(m, torch.nn.Linear)]


def pair(generator, rank: int, layer) -> tuple:
    import torch

    down = torch.randn(rank, layer.in_features, generator=generator) * SCALE
    up = torch.randn(layer.out_features, rank, generator=generator) * SCALE
    return down, up


def sdxl_peft(folder: Path, generator) -> dict:
    """UNet (rank 4) and text encoder (rank 2, CLIP's `text_model.` level as LoRA files name it)."""
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel

    tensors = {}
    for name, layer in linears(UNet2DConditionModel.from_pretrained(folder / "unet"), UNET_TARGETS):
        tensors[f"unet.{name}.lora_A.weight"], tensors[f"unet.{name}.lora_B.weight"] = pair(generator, 4, layer)
    for name, layer in linears(CLIPTextModel.from_pretrained(folder / "text_encoder"), TEXT_TARGETS):
        down, up = pair(generator, 2, layer)
        tensors[f"text_encoder.text_model.{name}.lora_A.weight"] = down
        tensors[f"text_encoder.text_model.{name}.lora_B.weight"] = up
    return tensors


def sdxl_kohya(folder: Path, generator, dora: bool = False) -> dict:
    """kohya names in diffusers' layout (`lora_unet_down_blocks_...`), alpha 2 on the UNet, 1 on CLIP; with
    `dora`, LyCORIS' DoRA magnitudes too (`dora_scale`, (out, 1))."""
    import torch
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel

    tensors = {}
    unet = UNet2DConditionModel.from_pretrained(folder / "unet")
    text = CLIPTextModel.from_pretrained(folder / "text_encoder")
    for prefix, module, targets, rank, alpha in (
        ("lora_unet_", unet, UNET_TARGETS, 4, 2.0),
        ("lora_te1_text_model_", text, TEXT_TARGETS, 2, 1.0),
    ):
        for name, layer in linears(module, targets):
            key = prefix + name.replace(".", "_")
            tensors[f"{key}.lora_down.weight"], tensors[f"{key}.lora_up.weight"] = pair(generator, rank, layer)
            tensors[f"{key}.alpha"] = torch.tensor(alpha)
            if dora:
                tensors[f"{key}.dora_scale"] = magnitude(generator, layer).reshape(-1, 1)
    return tensors


def magnitude(generator, layer):
    """A DoRA magnitude per output row: the row norms of the weight (DoRA's start) changed by up to 50%."""
    import torch

    change = 1 + 0.5 * (torch.rand(layer.out_features, generator=generator) * 2 - 1)
    return layer.weight.detach().norm(dim=1) * change


def sdxl_peft_dora(folder: Path, generator) -> dict:
    """PEFT DoRA as diffusers saves it: `lora_A` / `lora_B` and `lora_magnitude_vector` (out,), rank 4."""
    from diffusers import UNet2DConditionModel

    tensors = {}
    for name, layer in linears(UNet2DConditionModel.from_pretrained(folder / "unet"), UNET_TARGETS):
        tensors[f"unet.{name}.lora_A.weight"], tensors[f"unet.{name}.lora_B.weight"] = pair(generator, 4, layer)
        tensors[f"unet.{name}.lora_magnitude_vector"] = magnitude(generator, layer)
    return tensors


def sdxl_lycoris_dora(folder: Path, generator) -> dict:
    return sdxl_kohya(folder, generator, dora=True)


def flux_peft(folder: Path, generator) -> dict:
    from diffusers import FluxTransformer2DModel

    tensors = {}
    for name, layer in linears(FluxTransformer2DModel.from_pretrained(folder / "transformer"), FLUX_TARGETS):
        down, up = pair(generator, 4, layer)
        tensors[f"transformer.{name}.lora_A.weight"], tensors[f"transformer.{name}.lora_B.weight"] = down, up
    return tensors


def flux_kohya(folder: Path, generator) -> dict:
    """The original (BFL) layout: the double block's fused image qkv, alpha 2."""
    import torch
    from diffusers import FluxTransformer2DModel

    transformer = FluxTransformer2DModel.from_pretrained(folder / "transformer")
    inner = transformer.config.num_attention_heads * transformer.config.attention_head_dim
    key = "lora_unet_double_blocks_0_img_attn_qkv"
    qkv = torch.nn.Linear(inner, 3 * inner)
    tensors = {}
    tensors[f"{key}.lora_down.weight"], tensors[f"{key}.lora_up.weight"] = pair(generator, 4, qkv)
    tensors[f"{key}.alpha"] = torch.tensor(2.0)
    return tensors


# file name -> (tiny model folder, what it writes)
LORAS: dict[str, tuple[str, Callable]] = {
    "tiny-sdxl-lora-peft.safetensors": ("tiny-sdxl", sdxl_peft),
    "tiny-sdxl-lora-kohya.safetensors": ("tiny-sdxl", sdxl_kohya),
    "tiny-flux-lora-peft.safetensors": ("tiny-flux", flux_peft),
    "tiny-flux-lora-kohya.safetensors": ("tiny-flux", flux_kohya),
    # Named to sort after the files above: a file's seed is its place in the sorted names.
    "tiny-sdxl-lycoris-dora.safetensors": ("tiny-sdxl", sdxl_lycoris_dora),
    "tiny-sdxl-peft-dora.safetensors": ("tiny-sdxl", sdxl_peft_dora),
}


def build_tiny_loras(models_dir: Path, loras_dir: Path, seed: int = 0) -> list[Path]:
    """Write every LoRA whose model is in `models_dir` into `loras_dir` (kept when already there)."""
    written = []
    loras_dir.mkdir(parents=True, exist_ok=True)
    for index, (file_name, (model, make)) in enumerate(sorted(LORAS.items())):
        path = loras_dir / file_name
        if not path.is_file() and (models_dir / model).is_dir():
            import safetensors.torch
            import torch

            generator = torch.Generator().manual_seed(seed * 100 + index)
            safetensors.torch.save_file(make(models_dir / model, generator), str(path))
            logger.info("wrote %s", path)
        if path.is_file():
            written.append(path)
    return written


def loras_named_by(prompt: dict) -> list[str]:
    """The tiny LoRA files an API-format workflow applies (its Load LoRA (Diffusers) nodes)."""
    names = [
        node["inputs"].get("lora_name") for node in prompt.values() if node.get("class_type") == "MDiff_LoraLoader"
    ]
    return [name for name in names if name in LORAS]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models_dir", type=Path)
    parser.add_argument("loras_dir", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[tiny-loras] %(message)s")
    for path in build_tiny_loras(args.models_dir, args.loras_dir):
        print(path)  # noqa: T201 - the command's output
    return 0


if __name__ == "__main__":
    sys.exit(main())
