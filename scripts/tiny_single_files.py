"""Tiny single-file fixtures in the ORIGINAL formats users download (Stability's all-in-one checkpoint, BFL's
Flux, Z-Image's original transformer, GGUF, LDM VAE, bare text encoders), written from the tiny model folders
by ComfyUI's own converters and key maps and never by diffusers' single-file converters, so that diffusers'
loading path, which reads them, is checked against an independent writer. Byte-identical for the same
folders, kept when already there, laid out as ComfyUI's `models/` folders (`<folder>/<file>`):

    python scripts/tiny_single_files.py MODELS_DIR OUT_DIR     # MODELS_DIR holds SINGLE_FILE_MODELS' folders

What writes each file (every tensor float32 and exactly the folder's values unless it says otherwise):

- checkpoints/tiny-sdxl.safetensors: the tiny SDXL in Stability's layout. `model.diffusion_model.*`: the UNet
  renamed by `comfy.utils.unet_to_diffusers(unet_config)` (applied as `comfy.sd.load_diffusion_model_state_dict`
  applies it; `unet_config` derived from the diffusers config by `comfy_unet_config`), prefixed by
  `SDXL.process_unet_state_dict_for_saving`. `first_stage_model.*`: the VAE by
  `comfy.diffusers_convert.convert_vae_state_dict` (its decoder levels renumbered, see `ldm_vae`), prefixed by
  `SDXL.process_vae_state_dict_for_saving`. `conditioner.embedders.0.transformer.*` (CLIP-L, transformers
  keys, plus ComfyUI's int64 `position_ids`) and `conditioner.embedders.1.model.*` (OpenCLIP-bigG: fused
  `in_proj`, transposed `text_projection`) by `comfy.supported_models.SDXL.process_clip_state_dict_for_saving`
  (which calls `comfy.diffusers_convert.convert_text_enc_state_dict_v20`), as ComfyUI's CheckpointSave does.
- checkpoints/tiny-sdxl-bigg.safetensors: the same of tiny-sdxl-bigg, whose text_encoder_2 (48) is wider than
  its text_encoder (32), as OpenCLIP-bigG is than CLIP-L: diffusers' loader tells the two apart by width, which
  in tiny-sdxl (both 32 wide) it cannot.
- checkpoints/tiny-sdxl-truncated.safetensors: the first half of the bytes of tiny-sdxl.safetensors.
- checkpoints/not-a-model.safetensors: 4096 seeded random bytes (no ComfyUI function).
- diffusion_models/tiny-flux-bfl.safetensors: the tiny Flux transformer in BFL's layout (`double_blocks.*`,
  `single_blocks.*`, `img_in`, fused qkv, `final_layer.adaLN_modulation` with scale/shift swapped) by
  `comfy.model_detection.convert_diffusers_mmdit`, ComfyUI's own diffusers -> BFL conversion, which builds
  its map with `comfy.utils.flux_to_diffusers` (mmdit_config: depth, depth_single_blocks, hidden_size).
- diffusion_models/tiny-flux-Q8_0.gguf: the same BFL tensors by `gguf.GGUFWriter` (arch "flux"): Q8_0 by
  `gguf.quants.quantize` (see below), the rest F32.
- diffusion_models/tiny-flux-3072-bfl.safetensors: the same of tiny-flux-3072, whose transformer is as wide as
  FLUX.1's (3072, which diffusers' BFL converter hardcodes): float16, the folder's dtype, exactly its values.
- diffusion_models/tiny-flux-3072-Q8_0.gguf: the same BFL tensors as tiny-flux-Q8_0.gguf is written (its F32
  tensors are the float16 values, exactly).
- diffusion_models/tiny-flux-IQ2_XXS.gguf: the same, but F32 apart from its largest tensor
  (`single_blocks.0.linear1.weight`), stored as IQ2_XXS, a type diffusers cannot dequantize: seeded random
  bytes of the right size for its elements, laid out as rows of 256 (IQ2_XXS's block; no tensor of the tiny
  model has a last dim that large), with ComfyUI-GGUF's `comfy.gguf.orig_shape.<name>` key for the shape.
- diffusion_models/tiny-z-image-original.safetensors: the tiny Z-Image transformer in Z-Image's original layout
  (`layers.*`, `context_refiner.*`, `noise_refiner.*`, fused `attention.qkv`, `attention.out`, `q_norm`/`k_norm`,
  `x_embedder`, `final_layer`) by ComfyUI's map `comfy.utils.z_image_to_diffusers(mmdit_config)` (diffusers key
  -> original key, or a slice of one), applied in reverse (`original_z_image`; ComfyUI applies it to map
  diffusers-named LoRA keys onto its model, comfy/lora.py); mmdit_config (n_layers, dim, n_refiner_layers)
  derived from the diffusers config by `z_image_mmdit_config`.
- diffusion_models/tiny-z-image-Q8_0.gguf: the same original-layout tensors by `gguf.GGUFWriter` (arch
  "lumina2", ComfyUI-GGUF's name for Lumina 2 and Z-Image), quantized as tiny-flux-Q8_0.gguf is.
- unet/tiny-sdxl-unet.safetensors: the UNet alone as ComfyUI's UNETLoader reads it (the checkpoint's UNet
  keys without `model.diffusion_model.`).
- vae/tiny-sdxl-vae.safetensors: the VAE alone in the LDM layout, as ComfyUI's VAESave writes it (no prefix).
- text_encoders/tiny-clip-l.safetensors: `text_encoder` (CLIPTextModel) with `text_model.*` keys: the layout
  of CLIP-L files (and of CLIPSave's clip_l; ComfyUI's `detect_te_model` looks for it). transformers 5's
  CLIPTextModel has no `text_model` level of its own but loads these keys.
- clip/tiny-clip-g-prefixed.safetensors: `text_encoder_2` (CLIPTextModelWithProjection, transformers keys)
  under `clip_g.transformer.`, the prefix of ComfyUI's CLIP state dict (`CLIP.get_sd()`, comfy/sdxl_clip.py
  `SDXLClipModel.clip_g` -> `SDClipModel.transformer`) that CLIPSave is handed (CLIPSave itself strips it);
  added by `comfy.utils.state_dict_prefix_replace`.
- text_encoders/tiny-t5-fp16.safetensors: tiny-flux's `text_encoder_2` (T5EncoderModel, transformers keys as
  `save_pretrained` writes them: the tied `encoder.embed_tokens.weight` left to `shared.weight`), cast to
  float16 by `comfy.utils.convert_sd_to`.
- diffusers/tiny-sdxl-configs/: tiny-sdxl without its weights: model_index.json, every component's config,
  tokenizer and scheduler files, copied byte for byte (not the builder's tiny_model.json).
- diffusers/tiny-sdxl-bigg-configs/: the same of tiny-sdxl-bigg.

Q8_0 (every Q8_0 GGUF file): every `.weight` tensor of 2+ dims whose last dim is a multiple of 32 (a linear layer's
weight, which diffusers' GGUF loader computes with quantized); the rest, such as Z-Image's pad tokens, F32
(diffusers would put a quantized pad token into a plain parameter as raw bytes).

`single_files_named_by(prompt)` names the files an API-format workflow loads, so that a job builds them (and
the SINGLE_FILE_MODELS folders they are made of) only when it needs them. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import random
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from original_layouts import (
    bfl_flux,
    clip_l_keys,
    comfy_modules,
    comfy_unet_config,
    ldm_unet,
    ldm_vae,
    original_z_image,
    without_tied,
    z_image_mmdit_config,
)

logger = logging.getLogger("tiny_single_files")

SEED = 0
CLIP_G_PREFIX = "clip_g.transformer."
METADATA = {"format": "pt"}  # what ComfyUI's savers write
NOT_A_MODEL_BYTES = 4096
Q8_0_BLOCK = 32
UNSUPPORTED_TENSOR = "single_blocks.0.linear1.weight"
SDXL, SDXL_BIGG, FLUX, Z_IMAGE = "tiny-sdxl", "tiny-sdxl-bigg", "tiny-flux", "tiny-z-image"
FLUX_3072 = "tiny-flux-3072"
# the tiny model folders the files are of
SINGLE_FILE_MODELS: tuple[str, ...] = (SDXL, SDXL_BIGG, FLUX, FLUX_3072, Z_IMAGE)
# ComfyUI's model folder names -> the models/ folders each lists (comfy's folder_paths: text_encoders lists
# models/clip too, diffusion_models models/unet; clip and unet are their legacy names)
LISTED_IN = {
    "text_encoders": ("text_encoders", "clip"),
    "clip": ("text_encoders", "clip"),
    "diffusion_models": ("diffusion_models", "unet"),
    "unet": ("diffusion_models", "unet"),
}
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth", ".ckpt", ".msgpack", ".onnx")
BUILDER_FILES = ("tiny_model.json",)
STORED_DTYPES = {"F32": "float32", "F16": "float16"}  # safetensors header name -> torch dtype name


def _state_dict(model_class, folder: Path, **options) -> dict:
    model = model_class.from_pretrained(str(folder), **options)  # float32 (every folder's but tiny-flux-3072's)
    return {key: tensor.detach() for key, tensor in model.state_dict().items()}


def stored_dtype(folder: Path):
    """The dtype of a model folder's weights (diffusers' from_pretrained would make float32 of float16 ones)."""
    import safetensors
    import torch

    dtypes = set()
    for weights in sorted(folder.glob("*.safetensors")):
        with safetensors.safe_open(str(weights), "pt") as file:  # the header only
            dtypes |= {file.get_slice(key).get_dtype() for key in file.keys()}
    if len(dtypes) != 1 or not dtypes <= set(STORED_DTYPES):
        raise ValueError(f"{folder}: weights of dtypes {sorted(dtypes)}")
    return getattr(torch, STORED_DTYPES[dtypes.pop()])


class SdxlSource:
    """A tiny SDXL folder's weights in the LDM layouts, loaded and converted once each, on first use."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @functools.cached_property
    def unet_config(self) -> dict:
        from diffusers import UNet2DConditionModel

        return comfy_unet_config(dict(UNet2DConditionModel.load_config(str(self.folder / "unet"))))

    @functools.cached_property
    def unet(self) -> dict:
        from diffusers import UNet2DConditionModel

        return ldm_unet(_state_dict(UNet2DConditionModel, self.folder / "unet"), self.unet_config)

    @functools.cached_property
    def vae(self) -> dict:
        from diffusers import AutoencoderKL

        levels = len(AutoencoderKL.load_config(str(self.folder / "vae"))["block_out_channels"])
        return ldm_vae(_state_dict(AutoencoderKL, self.folder / "vae"), levels)

    @functools.cached_property
    def clip_l(self) -> dict:
        from transformers import CLIPTextModel

        return clip_l_keys(_state_dict(CLIPTextModel, self.folder / "text_encoder"))

    @functools.cached_property
    def clip_g(self) -> dict:
        from transformers import CLIPTextModelWithProjection

        return _state_dict(CLIPTextModelWithProjection, self.folder / "text_encoder_2")

    @functools.cached_property
    def checkpoint(self) -> bytes:
        """What ComfyUI's CheckpointSave writes: model_base.state_dict_for_saving's three parts."""
        import safetensors.torch

        utils, sdxl = comfy_modules().utils, comfy_modules().supported_models.SDXL(self.unet_config)
        clip = utils.state_dict_prefix_replace(dict(self.clip_l), {"": "clip_l.transformer."})
        clip.update(utils.state_dict_prefix_replace(dict(self.clip_g), {"": CLIP_G_PREFIX}))
        tensors = sdxl.process_clip_state_dict_for_saving(clip)
        tensors.update(sdxl.process_vae_state_dict_for_saving(dict(self.vae)))
        tensors.update(sdxl.process_unet_state_dict_for_saving(dict(self.unet)))
        return safetensors.torch.save({key: t.contiguous() for key, t in tensors.items()}, metadata=METADATA)


def _bfl_transformer(folder: Path) -> dict:
    """A Flux folder's transformer in BFL's layout, in the folder's dtype."""
    from diffusers import FluxTransformer2DModel

    folder = folder / "transformer"
    return bfl_flux(_state_dict(FluxTransformer2DModel, folder, torch_dtype=stored_dtype(folder)))


class Sources:
    """The tiny models' weights, loaded and converted once each, on first use."""

    def __init__(self, models_dir: Path) -> None:
        self.sdxl = SdxlSource(models_dir / SDXL)
        self.sdxl_bigg = SdxlSource(models_dir / SDXL_BIGG)
        self.flux = models_dir / FLUX
        self.flux_3072 = models_dir / FLUX_3072
        self.z_image = models_dir / Z_IMAGE

    @functools.cached_property
    def t5(self) -> dict:
        from transformers import T5EncoderModel

        return without_tied(_state_dict(T5EncoderModel, self.flux / "text_encoder_2"))

    @functools.cached_property
    def flux_bfl(self) -> dict:
        return _bfl_transformer(self.flux)

    @functools.cached_property
    def flux_3072_bfl(self) -> dict:
        return _bfl_transformer(self.flux_3072)

    @functools.cached_property
    def z_image_original(self) -> dict:
        from diffusers import ZImageTransformer2DModel

        folder = self.z_image / "transformer"
        mmdit_config = z_image_mmdit_config(dict(ZImageTransformer2DModel.load_config(str(folder))))
        return original_z_image(_state_dict(ZImageTransformer2DModel, folder), mmdit_config)


def _save(tensors: dict, path: Path) -> None:
    import safetensors.torch

    path.write_bytes(safetensors.torch.save({key: t.contiguous() for key, t in tensors.items()}, metadata=METADATA))


def q8_0_fits(name: str, shape: tuple[int, ...]) -> bool:
    """A linear layer's weight whose rows are whole Q8_0 blocks (see the module docstring)."""
    return name.endswith(".weight") and len(shape) >= 2 and shape[-1] % Q8_0_BLOCK == 0


def write_gguf(tensors: dict, path: Path, arch: str, unsupported: str | None = None) -> None:
    """The tensors as GGUF: Q8_0 where it fits (shapes reversed into ggml's order by the writer) and F32, or
    F32 with `unsupported` as seeded IQ2_XXS bytes."""
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), arch=arch)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32 if unsupported else gguf.LlamaFileType.MOSTLY_Q8_0)
    for name in sorted(tensors):  # GGUF keeps the order it is given (ComfyUI's key maps are sets)
        data = tensors[name].float().numpy()
        if name == unsupported:
            qtype = gguf.GGMLQuantizationType.IQ2_XXS
            block, type_size = gguf.GGML_QUANT_SIZES[qtype]
            if data.size % block:
                raise ValueError(f"{name} {data.shape} is not a whole number of {qtype.name} blocks")
            raw = np.random.default_rng(SEED).integers(0, 256, (data.size // block, type_size), dtype=np.uint8)
            writer.add_array(f"comfy.gguf.orig_shape.{name}", list(data.shape))
            writer.add_tensor(name, raw, raw_dtype=qtype)
        elif not unsupported and q8_0_fits(name, data.shape):
            qtype = gguf.GGMLQuantizationType.Q8_0
            writer.add_tensor(name, gguf.quants.quantize(data, qtype), raw_dtype=qtype)
        else:
            writer.add_tensor(name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def copy_configs(folder: Path, out: Path) -> None:
    """Every file of the model folder but its weights and the builder's marker, byte for byte."""
    for source in sorted(folder.rglob("*")):
        if source.is_file() and not source.name.endswith(WEIGHT_SUFFIXES) and source.name not in BUILDER_FILES:
            target = out / source.relative_to(folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)


def _not_a_model(sources: Sources, path: Path) -> None:
    path.write_bytes(random.Random(SEED).randbytes(NOT_A_MODEL_BYTES))


def _truncated(sources: Sources, path: Path) -> None:
    path.write_bytes(sources.sdxl.checkpoint[: len(sources.sdxl.checkpoint) // 2])


def _clip_g(sources: Sources, path: Path) -> None:
    _save(comfy_modules().utils.state_dict_prefix_replace(dict(sources.sdxl.clip_g), {"": CLIP_G_PREFIX}), path)


def _t5_fp16(sources: Sources, path: Path) -> None:
    import torch

    _save(comfy_modules().utils.convert_sd_to(dict(sources.t5), torch.float16), path)


# "<ComfyUI models folder>/<file>" -> (tiny model folder it needs, or None; what writes it to a path)
FILES: dict[str, tuple[str | None, Callable[[Sources, Path], None]]] = {
    "checkpoints/tiny-sdxl.safetensors": (SDXL, lambda s, path: path.write_bytes(s.sdxl.checkpoint)),
    "checkpoints/tiny-sdxl-bigg.safetensors": (SDXL_BIGG, lambda s, path: path.write_bytes(s.sdxl_bigg.checkpoint)),
    "checkpoints/tiny-sdxl-truncated.safetensors": (SDXL, _truncated),
    "checkpoints/not-a-model.safetensors": (None, _not_a_model),
    "diffusion_models/tiny-flux-bfl.safetensors": (FLUX, lambda s, path: _save(s.flux_bfl, path)),
    "diffusion_models/tiny-flux-Q8_0.gguf": (FLUX, lambda s, path: write_gguf(s.flux_bfl, path, "flux")),
    "diffusion_models/tiny-flux-3072-bfl.safetensors": (FLUX_3072, lambda s, path: _save(s.flux_3072_bfl, path)),
    "diffusion_models/tiny-flux-3072-Q8_0.gguf": (
        FLUX_3072,
        lambda s, path: write_gguf(s.flux_3072_bfl, path, "flux"),
    ),
    "diffusion_models/tiny-flux-IQ2_XXS.gguf": (
        FLUX,
        lambda s, path: write_gguf(s.flux_bfl, path, "flux", unsupported=UNSUPPORTED_TENSOR),
    ),
    "diffusion_models/tiny-z-image-original.safetensors": (Z_IMAGE, lambda s, path: _save(s.z_image_original, path)),
    "diffusion_models/tiny-z-image-Q8_0.gguf": (
        Z_IMAGE,
        lambda s, path: write_gguf(s.z_image_original, path, "lumina2"),
    ),
    "unet/tiny-sdxl-unet.safetensors": (SDXL, lambda s, path: _save(s.sdxl.unet, path)),
    "vae/tiny-sdxl-vae.safetensors": (SDXL, lambda s, path: _save(s.sdxl.vae, path)),
    "text_encoders/tiny-clip-l.safetensors": (SDXL, lambda s, path: _save(s.sdxl.clip_l, path)),
    "clip/tiny-clip-g-prefixed.safetensors": (SDXL, _clip_g),
    "text_encoders/tiny-t5-fp16.safetensors": (FLUX, _t5_fp16),
    "diffusers/tiny-sdxl-configs": (SDXL, lambda s, path: copy_configs(s.sdxl.folder, path)),
    "diffusers/tiny-sdxl-bigg-configs": (SDXL_BIGG, lambda s, path: copy_configs(s.sdxl_bigg.folder, path)),
}


def _names_in(node: dict) -> list[str]:
    """The "<folder>/<file>" names a prompt node's inputs name (ComfyUI's folder names as they are)."""
    kind, inputs = node.get("class_type"), node.get("inputs", {})
    if kind == "MDiff_LoadCheckpoint":
        named = [("checkpoints", inputs.get("ckpt_name")), ("diffusers", inputs.get("config"))]
    elif kind == "MDiff_LoadComponents":
        named = [("diffusers", inputs.get("model"))]
    elif kind == "MDiff_ReplaceComponent" and isinstance(inputs.get("source"), str):
        named = [tuple(inputs["source"].partition("/")[::2])]
    else:
        named = []
    return [f"{folder}/{name}" for folder, name in named if isinstance(name, str) and name]


def single_files_named_by(prompt: dict) -> list[str]:
    """The files of this builder (FILES' names) an API-format workflow loads: Load Checkpoint (Diffusers)'s
    ckpt_name and config, Load Diffusers Components' model (when it is a configs-only folder) and Replace
    Component's source. A source in a folder ComfyUI lists several models/ folders under (text_encoders:
    models/clip too) counts as the builder's file in any of them."""
    names = []
    for node in prompt.values():
        for name in _names_in(node):
            folder, _, file = name.partition("/")
            names += [f"{listed}/{file}" for listed in LISTED_IN.get(folder, (folder,)) if f"{listed}/{file}" in FILES]
    return list(dict.fromkeys(names))


def models_for(names: list[str]) -> list[str]:
    """The tiny models (SINGLE_FILE_MODELS) the files `names` (FILES' names) are made of."""
    return [model for model in SINGLE_FILE_MODELS if any(FILES[name][0] == model for name in names)]


def _write(make: Callable[[Sources, Path], None], sources: Sources, path: Path) -> None:
    """Write to a neighbour and rename, so that an interrupted build leaves no file that looks complete."""
    partial = path.with_name(path.name + ".partial")
    if partial.is_dir():
        shutil.rmtree(partial)
    make(sources, partial)
    os.replace(partial, path)


def build_tiny_single_files(models_dir: Path, out_dir: Path) -> dict[str, Path]:
    """Write every file whose tiny model is in `models_dir` under `out_dir` (kept when already there):
    "<ComfyUI models folder>/<file>" -> its path."""
    sources = Sources(models_dir)
    written = {}
    for name, (model, make) in FILES.items():
        path = out_dir / name
        if not path.exists() and (model is None or (models_dir / model).is_dir()):
            path.parent.mkdir(parents=True, exist_ok=True)
            _write(make, sources, path)
            logger.info("wrote %s", path)
        if path.exists():
            written[name] = path
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[tiny-single-files] %(message)s")
    for path in build_tiny_single_files(args.models_dir, args.out_dir).values():
        print(path)  # noqa: T201 - the command's output
    return 0


if __name__ == "__main__":
    sys.exit(main())
