"""Diffusers' layouts back to the original ones (Stability's LDM UNet and VAE, BFL's Flux, Z-Image's own, the
text encoders' file layouts) by ComfyUI's own key maps and converters, never by diffusers' single-file
converters: what scripts/tiny_single_files.py writes its fixtures with, so that diffusers' loading path, which
reads them, is checked against an independent writer.
"""

from __future__ import annotations

import re
import sys
from types import ModuleType

from comfy_harness import comfyui_dir

CLIP_L_LEVEL = "text_model."
LDM_VAE_LEVELS = 4  # comfy.diffusers_convert's VAE map is written for SD's four levels


def comfy_modules() -> ModuleType:
    """ComfyUI's modules, its root on sys.path and (unless something imported it already) on the CPU."""
    root = str(comfyui_dir())
    if root not in sys.path:
        sys.path.insert(0, root)
    if "comfy.model_management" not in sys.modules:
        from comfy.cli_args import args

        args.cpu = True  # before comfy.model_detection imports comfy.model_management
    import comfy.diffusers_convert
    import comfy.model_detection
    import comfy.supported_models
    import comfy.utils

    return comfy


def _per_level(value: int | list[int], levels: int) -> list[int]:
    return list(value) if isinstance(value, (list, tuple)) else [value] * levels


def comfy_unet_config(config: dict) -> dict:
    """ComfyUI's `unet_config` (what comfy.model_detection.detect_unet_config reads off an LDM UNet) for a
    diffusers UNet2DConditionModel config: per input block and per output block transformer depths."""
    if config.get("mid_block_type") != "UNetMidBlock2DCrossAttn":
        raise NotImplementedError(f"mid block {config.get('mid_block_type')!r}")
    channels = config["block_out_channels"]
    levels = len(channels)
    res_blocks = _per_level(config["layers_per_block"], levels)
    depths = _per_level(config["transformer_layers_per_block"], levels)
    up_depths = config.get("reverse_transformer_layers_per_block") or list(reversed(depths))
    if any(isinstance(depth, (list, tuple)) for depth in depths + list(up_depths)):
        raise NotImplementedError("per-layer transformer depths")
    down = [
        depth if "CrossAttn" in kind else 0 for depth, kind in zip(depths, config["down_block_types"], strict=True)
    ]
    up = [depth if "CrossAttn" in kind else 0 for depth, kind in zip(up_depths, config["up_block_types"], strict=True)]
    up_res_blocks = list(reversed(res_blocks))
    # unet_to_diffusers pops transformer_depth_output from its end: output block 0 (the deepest) is last
    output = [depth for depth, res in zip(up, up_res_blocks, strict=True) for _ in range(res + 1)]
    if any(channel % channels[0] for channel in channels):
        raise ValueError(f"block_out_channels {channels} are not multiples of the first")
    adm = config["projection_class_embeddings_input_dim"] if config.get("addition_embed_type") else None
    return {
        "in_channels": config["in_channels"],
        "out_channels": config["out_channels"],
        "model_channels": channels[0],
        "num_res_blocks": res_blocks,
        "channel_mult": [channel // channels[0] for channel in channels],
        "transformer_depth": [depth for depth, res in zip(down, res_blocks, strict=True) for _ in range(res)],
        "transformer_depth_output": list(reversed(output)),
        "transformer_depth_middle": depths[-1],
        "context_dim": config["cross_attention_dim"],
        "use_linear_in_transformer": config["use_linear_projection"],
        "adm_in_channels": adm,
    }


def ldm_unet(unet_sd: dict, unet_config: dict) -> dict:
    """The UNet's keys renamed by ComfyUI's map, as comfy.sd.load_diffusion_model_state_dict renames a
    diffusers UNet; a key the map lacks is an error rather than a dropped weight."""
    key_map = comfy_modules().utils.unet_to_diffusers(unet_config)
    unmapped = sorted(set(unet_sd) - set(key_map))
    if unmapped:
        raise ValueError(f"unet_to_diffusers maps no LDM key for {unmapped[:5]}")
    return {key_map[key]: tensor for key, tensor in unet_sd.items()}


def ldm_vae(vae_sd: dict, levels: int) -> dict:
    """The VAE by ComfyUI's converter. Its map numbers the decoder's levels for SD's four (diffusers'
    up_blocks.i -> up.{3 - i}); an LDM decoder with fewer levels counts them from 0, so they move down."""
    if levels > LDM_VAE_LEVELS:
        raise NotImplementedError(f"a VAE of {levels} levels")
    converted = comfy_modules().diffusers_convert.convert_vae_state_dict(vae_sd)
    shift = LDM_VAE_LEVELS - levels
    level = re.compile(r"^decoder\.up\.(\d+)\.")
    out = {level.sub(lambda m: f"decoder.up.{int(m.group(1)) - shift}.", key): v for key, v in converted.items()}
    leftover = [key for key in out if "_blocks." in key or "attentions." in key]
    if leftover or len(out) != len(vae_sd):
        raise ValueError(f"convert_vae_state_dict left diffusers keys: {leftover[:5]}")
    return out


def bfl_flux(transformer_sd: dict) -> dict:
    """BFL's layout by ComfyUI's own diffusers -> BFL conversion (flux_to_diffusers' map, its qkv slices
    and scale/shift swap applied by convert_diffusers_mmdit); a key it leaves is an error."""
    remaining = dict(transformer_sd)  # convert_diffusers_mmdit pops what it converts
    converted = comfy_modules().model_detection.convert_diffusers_mmdit(remaining, "")
    if converted is None or remaining:
        raise ValueError(f"convert_diffusers_mmdit left {sorted(remaining)[:5]}")
    return {key: tensor.contiguous() for key, tensor in converted.items()}


def z_image_mmdit_config(config: dict) -> dict:
    """What comfy.utils.z_image_to_diffusers reads of a Z-Image transformer, from its diffusers config. (ComfyUI's
    detection leaves n_refiner_layers to the map's default of 2, Z-Image's; the tiny one has 1.)"""
    return {"n_layers": config["n_layers"], "dim": config["dim"], "n_refiner_layers": config["n_refiner_layers"]}


def original_z_image(transformer_sd: dict, mmdit_config: dict) -> dict:
    """Z-Image's original layout by ComfyUI's map (diffusers key -> original key, or (fused key, (dim, offset,
    size)) for the q, k and v slices of `attention.qkv`), applied in reverse: each fused tensor is its slices
    concatenated, which must tile it. A key the map lacks is an error."""
    import torch

    key_map = comfy_modules().utils.z_image_to_diffusers(mmdit_config, output_prefix="")
    unmapped = sorted(set(transformer_sd) - set(key_map))
    if unmapped:
        raise ValueError(f"z_image_to_diffusers maps no original key for {unmapped[:5]}")
    out, slices = {}, {}
    for key, tensor in transformer_sd.items():
        target = key_map[key]
        if isinstance(target, str):
            out[target] = tensor
        elif len(target) == 2:
            slices.setdefault(target[0], []).append((*target[1], tensor))
        else:
            raise NotImplementedError(f"{key}: a map entry with a function {target}")
    for name, parts in slices.items():
        parts.sort(key=lambda part: part[1])
        dims, end = {part[0] for part in parts}, 0
        for _, offset, size, tensor in parts:
            if offset != end or tensor.shape[parts[0][0]] != size:
                raise ValueError(f"{name}: the slices {[part[:3] for part in parts]} do not tile it")
            end += size
        if len(dims) != 1:
            raise ValueError(f"{name}: slices along dims {sorted(dims)}")
        out[name] = torch.cat([part[3] for part in parts], dim=parts[0][0])
    return {key: tensor.contiguous() for key, tensor in out.items()}


def clip_l_keys(state_dict: dict) -> dict:
    """CLIP-L's keys with their `text_model.` level (which transformers 5's CLIPTextModel dropped)."""
    return {key if key.startswith(CLIP_L_LEVEL) else CLIP_L_LEVEL + key: v for key, v in state_dict.items()}


def without_tied(state_dict: dict) -> dict:
    """The state dict less the names that alias an earlier tensor (T5's tied embed_tokens), as save_pretrained
    writes it."""
    seen, out = set(), {}
    for key, tensor in state_dict.items():
        if tensor.data_ptr() not in seen:
            seen.add(tensor.data_ptr())
            out[key] = tensor
    return out
