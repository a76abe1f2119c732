"""LoRA files on diffusers modules through ComfyUI's patcher: diffusers reads the formats, ComfyUI patches.

1. The family's own diffusers LoRA mixin reads the file (`lora_state_dict`: diffusers/PEFT, kohya, and the
   other formats diffusers converts), and diffusers' converters put each component's part in PEFT naming,
   exactly as `load_lora_weights` prepares it before handing it to PEFT.
2. The alphas diffusers reads (kohya `network_alphas`, PEFT metadata `lora_alpha` / `alpha_pattern`) become
   ComfyUI's `<module>.alpha` keys; without one a module's scale is 1 (alpha = rank), as in diffusers.
3. DoRA magnitudes become ComfyUI's `<module>.dora_scale`: PEFT's `lora_magnitude_vector` (one value per
   output feature) shaped as ComfyUI's, and the kohya / LyCORIS `dora_scale` keys, which diffusers' readers
   drop, put back on the module whose converted `lora_A` is their `lora_down` (diffusers renames kohya's
   tensors, it does not change them). ComfyUI applies them with its own DoRA formula.
4. `comfy.lora.load_lora` turns it into patches on the module's state-dict keys (`module.<key>.weight` in
   the holder ComfyUI manages), and `ModelPatcher.add_patches` on a clone of the component's patcher applies
   them the way ComfyUI applies a LoRA to its own models: patched when loaded, or per layer while streamed.
   The original patcher, and every branch using it, is untouched; loading it again restores the weights.
   (LoHa / LoKr files are not read: diffusers' readers refuse their keys, and the node says so.)
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import comfy.lora
import safetensors
import torch
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import (
    convert_state_dict_to_diffusers,
    convert_state_dict_to_peft,
    convert_unet_state_dict_to_peft,
)

logger = logging.getLogger(__name__)

# Where a LoRA key's module path ends: `<path>.lora_A.weight`, `<path>.alpha`, `<path>.lokr_w1`, ...
ADAPTER_SUFFIX = re.compile(
    r"\.(?:lora_[AB]|lora_down|lora_up|alpha|lokr_\w+|hada_\w+|diff|diff_b|dora_scale|lora_magnitude_vector)(?:\.|$)"
)

LYCORIS_ONLY = re.compile(r"\.(?:hada|lokr)_\w+$")  # LoHa / LoKr keys, which no diffusers reader converts
DORA_SCALE = ".dora_scale"
PEFT_MAGNITUDE = re.compile(r"\.lora_magnitude_vector(?:\.weight)?$")


@dataclass(frozen=True, kw_only=True)
class LoraFile:
    """A LoRA file read by a family's mixin: per component, ComfyUI-format weights (PEFT names + alphas)."""

    components: Mapping[str, dict[str, torch.Tensor]]
    unmatched: list[str] = field(default_factory=list)  # keys of the file no component takes

    @property
    def empty(self) -> bool:
        return not any(self.components.values())


def read_lora(mixin: type, path: str, modules: Mapping[str, torch.nn.Module]) -> LoraFile:
    """`path` read and converted by `mixin` (the bundle's pipeline class) for the components in `modules`."""
    kinds, dropped = beyond_diffusers(path)
    if kinds:
        raise ValueError(
            f"it holds LoHa / LoKr weights ({', '.join(kinds)}_* keys), which diffusers' readers do not take"
        )
    state_dict, alphas, metadata = _lora_state_dict(mixin, path, modules)
    parts: dict[str, dict[str, torch.Tensor]] = {}
    taken: set[str] = set()
    for name in getattr(mixin, "_lora_loadable_modules", None) or []:
        if name not in modules:
            continue
        keys = {key for key in state_dict if key.startswith(f"{name}.")}
        taken |= keys
        # Alphas converted with the weights they belong to (diffusers infers a format from the whole set).
        raw = {**_strip(state_dict, name), **{k: torch.tensor(float(v)) for k, v in _strip(alphas, name).items()}}
        part = _alphas_as_comfyui(_peft_names(raw, modules[name]), _strip(metadata, name))
        parts[name] = _magnitudes_as_dora_scale(part, modules[name])
    carried = _carry_dora(parts, dropped)
    lost = [f"{name}{DORA_SCALE}" for name in dropped if name not in carried]
    return LoraFile(components=parts, unmatched=sorted(set(state_dict) - taken) + sorted(lost))


def _lora_state_dict(mixin: type, path: str, modules: Mapping[str, torch.nn.Module]) -> tuple[dict, dict, dict]:
    """(state dict, alphas, metadata), whatever combination this mixin's `lora_state_dict` returns."""
    accepted = inspect.signature(mixin.lora_state_dict).parameters
    kwargs: dict[str, Any] = {"return_lora_metadata": True}
    if "return_alphas" in accepted:
        kwargs["return_alphas"] = True
    if "unet" in modules:  # kohya files in the original (SGM) layout need the UNet's config to convert
        kwargs["unet_config"] = modules["unet"].config
    result = mixin.lora_state_dict(path, **kwargs)
    result = result if isinstance(result, tuple) else (result,)
    state_dict = result[0]
    alphas = result[1] if len(result) == 3 else None
    metadata = result[-1] if len(result) > 1 else None
    return dict(state_dict), dict(alphas or {}), dict(metadata or {})


def _strip(mapping: Mapping[str, Any], name: str) -> dict[str, Any]:
    return {key.removeprefix(f"{name}."): value for key, value in mapping.items() if key.startswith(f"{name}.")}


def _peft_names(part: dict[str, Any], module: torch.nn.Module) -> dict[str, Any]:
    """What diffusers does to a component's part before PEFT sees it (`load_lora_adapter`, and
    `_load_lora_into_text_encoder` for transformers models)."""
    if not part:
        return part
    if isinstance(module, ModelMixin):
        return part if any("lora_A" in key for key in part) else convert_unet_state_dict_to_peft(part)
    part = convert_state_dict_to_peft(convert_state_dict_to_diffusers(part))
    if not hasattr(module, "text_model"):  # LoRA files still name CLIP's `text_model.` level
        part = {key.removeprefix("text_model."): value for key, value in part.items()}
    return part


def _alphas_as_comfyui(part: dict[str, Any], metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Alphas as ComfyUI reads them (`<module>.alpha`): kohya's converted `network_alphas`
    (`<module>.lora_A.weight.alpha`), else PEFT metadata's `lora_alpha` / `alpha_pattern`; none: scale 1."""
    out = {key: value for key, value in part.items() if not key.endswith(".alpha")}
    for key, value in part.items():
        if key.endswith(".alpha"):
            out[f"{ADAPTER_SUFFIX.split(key)[0]}.alpha"] = value
    if metadata.get("lora_alpha") is not None and not any(key.endswith(".alpha") for key in out):
        patterns = metadata.get("alpha_pattern") or {}
        for path in {ADAPTER_SUFFIX.split(key)[0] for key in out if ".lora_A" in key}:
            out[f"{path}.alpha"] = torch.tensor(float(_pattern_value(path, patterns, metadata["lora_alpha"])))
    return out


def _pattern_value(path: str, patterns: Mapping[str, Any], default: Any) -> Any:
    """PEFT's `alpha_pattern` rule: a key matches a module whose name ends with it."""
    for pattern, value in patterns.items():
        if re.match(rf"(.*\.)?({pattern})$", path):
            return value
    return default


def _magnitudes_as_dora_scale(part: dict[str, Any], module: torch.nn.Module) -> dict[str, Any]:
    """PEFT's DoRA magnitudes (`<path>.lora_magnitude_vector`, one value per output feature) as ComfyUI's
    `<path>.dora_scale`, shaped (out, 1, ...) like the module's weight so that each scales its output row."""
    out = {}
    for key, value in part.items():
        weight = _weight(module, PEFT_MAGNITUDE.sub("", key)) if PEFT_MAGNITUDE.search(key) else None
        if weight is None:
            out[key] = value
        else:
            out[PEFT_MAGNITUDE.sub(DORA_SCALE, key)] = value.reshape(value.shape[0], *[1] * (weight.dim() - 1))
    return out


def _weight(module: torch.nn.Module, path: str) -> torch.Tensor | None:
    try:
        weight = getattr(module.get_submodule(path), "weight", None)
    except AttributeError:
        return None
    return weight if isinstance(weight, torch.Tensor) else None


def beyond_diffusers(path: str) -> tuple[list[str], dict[str, tuple[torch.Tensor, torch.Tensor | None]]]:
    """What diffusers' LoRA readers do not take from a safetensors file, in one look at it: its LoHa / LoKr
    kinds (`hada`, `lokr`), and its kohya / LyCORIS DoRA magnitudes (`<name>.dora_scale`, which they drop),
    each with its module's `lora_down` weight (None without one), by which `_carry_dora` finds the module."""
    if not path.endswith(".safetensors"):
        return [], {}
    with safetensors.safe_open(path, framework="pt") as file:
        keys = set(file.keys())
        kinds = sorted({match.group(0)[1:].split("_")[0] for key in keys if (match := LYCORIS_ONLY.search(key))})
        names = sorted(key.removesuffix(DORA_SCALE) for key in keys if key.endswith(DORA_SCALE))
        downs = {name: f"{name}.lora_down.weight" for name in names}
        dropped = {
            name: (file.get_tensor(f"{name}{DORA_SCALE}"), file.get_tensor(down) if down in keys else None)
            for name, down in downs.items()
        }
    return kinds, dropped


def _carry_dora(parts: dict[str, dict[str, Any]], dropped: Mapping[str, tuple]) -> set[str]:
    """Each dropped magnitude onto the one module whose converted `lora_A` equals its `lora_down`; returns
    the names carried (a `lora_down` split over several modules, as a fused qkv's, is not)."""
    found: dict[str, list[tuple[str, str]]] = {}
    for name, part in parts.items():
        for key, value in part.items():
            if key.endswith(".lora_A.weight"):
                found.setdefault(_digest(value), []).append((name, key.removesuffix(".lora_A.weight")))
    carried = set()
    for kohya_name, (scale, down) in dropped.items():
        modules = found.get(_digest(down), []) if down is not None else []
        if len(modules) == 1:
            name, path = modules[0]
            parts[name][f"{path}{DORA_SCALE}"] = scale
            carried.add(kohya_name)
    return carried


def _digest(tensor: torch.Tensor) -> tuple:
    data = tensor.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
    return tuple(tensor.shape), tensor.dtype, hashlib.sha256(data).hexdigest()


def module_key_map(holder: torch.nn.Module) -> dict[str, str]:
    """LoRA module path -> the holder's state-dict key of its weight (`module.<path>.weight`)."""
    keys = {}
    for key in holder.state_dict():
        if key.startswith("module.") and key.endswith(".weight"):
            keys[key.removeprefix("module.").removesuffix(".weight")] = key
    return keys


def patches_for(part: Mapping[str, torch.Tensor], key_map: Mapping[str, str]) -> tuple[dict, list[str]]:
    """ComfyUI's patches for one component's part, and the part's keys no module of it has."""
    matched = {key: value for key, value in part.items() if ADAPTER_SUFFIX.split(key)[0] in key_map}
    missing = sorted(set(part) - set(matched))
    return comfy.lora.load_lora(matched, dict(key_map), log_missing=False), missing
