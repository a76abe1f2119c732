"""Weights from single files, the way ComfyUI users keep them, read by diffusers' and transformers' own code.

A component is a config (from a diffusers folder: full, or configs only) plus weights from anywhere:

- diffusers models (UNets, transformers, VAEs, ControlNets) go through the class's own
  `from_single_file(path, config=folder, subfolder=name)`: diffusers converts the original layouts (Stability's
  `model.diffusion_model.*`, BFL's `double_blocks.*`, LDM VAEs, ...) and reads `.gguf` files quantized with
  `GGUFQuantizationConfig` (the layers unpack them on every call);
- transformers text encoders (ComfyUI's `text_encoders`/`clip` files, in transformers' key layout, maybe under a
  prefix) load into the component's class through `from_pretrained(None, config=..., state_dict=...)`, with a
  strict key check: a file that does not fill the model exactly is refused, never half-initialised.

Every file is checked from its header first (`read_header`: names, shapes, dtypes, no weights read), so a
truncated file, a GGUF of a quant type diffusers cannot unpack, or a file of another model is refused before
anything large is allocated. Errors are `WeightsFileError`, naming the file and the reason.
"""

from __future__ import annotations

import json
import logging
import struct
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

logger = logging.getLogger(__name__)

SAFETENSORS_SUFFIX = ".safetensors"
GGUF_SUFFIX = ".gguf"
SUFFIXES = (SAFETENSORS_SUFFIX, GGUF_SUFFIX)
SAFETENSORS_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "F8_E4M3": torch.float8_e4m3fn,
    "F8_E5M2": torch.float8_e5m2,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


class WeightsFileError(ValueError):
    """A weights file that cannot be used, with the file's name and the reason."""


def read_header(path: Path) -> dict[str, torch.Tensor]:
    """Name -> a meta tensor of the stored shape and dtype (packed bytes for quantized GGUF tensors), from the
    file's header alone. Raises WeightsFileError for a file that is not a complete safetensors or GGUF file."""
    if path.suffix == GGUF_SUFFIX:
        return _gguf_header(path)
    if path.suffix != SAFETENSORS_SUFFIX:
        raise WeightsFileError(
            f"{path.name}: only .safetensors and .gguf weights are read (pickle files can run code)"
        )
    return _safetensors_header(path)


def _safetensors_header(path: Path) -> dict[str, torch.Tensor]:
    """Parsed by hand, so a truncated file is found before any weight is read (the format: an 8-byte length,
    a JSON header, then the tensors' bytes at the header's offsets)."""
    size = path.stat().st_size
    with path.open("rb") as file:
        start = file.read(8)
        length = struct.unpack("<Q", start)[0] if len(start) == 8 else -1
        if length <= 0 or 8 + length > size:
            raise WeightsFileError(f"{path.name}: not a safetensors file (its header is missing or cut off)")
        try:
            header = json.loads(file.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise WeightsFileError(f"{path.name}: not a safetensors file (unreadable header: {error})") from error
    entries = {name: entry for name, entry in header.items() if name != "__metadata__"}
    end = max((entry["data_offsets"][1] for entry in entries.values()), default=0)
    if 8 + length + end > size:
        raise WeightsFileError(f"{path.name}: the file is truncated ({size} bytes of {8 + length + end})")
    return {
        name: _meta(entry["shape"], SAFETENSORS_DTYPES.get(entry["dtype"], torch.uint8))
        for name, entry in entries.items()
    }


def _gguf_header(path: Path) -> dict[str, torch.Tensor]:
    import gguf
    from diffusers.quantizers.gguf.utils import SUPPORTED_GGUF_QUANT_TYPES

    try:
        reader = gguf.GGUFReader(str(path))
    except (ValueError, OSError, struct.error, IndexError) as error:
        raise WeightsFileError(f"{path.name}: not a readable GGUF file ({type(error).__name__}: {error})") from error
    unpacked = {gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16}
    unsupported = sorted(
        {t.tensor_type.name for t in reader.tensors if t.tensor_type not in unpacked | set(SUPPORTED_GGUF_QUANT_TYPES)}
    )
    if unsupported:
        supported = ", ".join(sorted(t.name for t in SUPPORTED_GGUF_QUANT_TYPES))
        raise WeightsFileError(
            f"{path.name}: quant type {', '.join(unsupported)} cannot be read by diffusers (it reads {supported})"
        )
    return {t.name: _meta(list(reversed([int(n) for n in t.shape])), torch.uint8) for t in reader.tensors}


def _meta(shape: list[int], dtype: torch.dtype) -> torch.Tensor:
    return torch.empty(shape, dtype=dtype, device="meta")


def load_diffusers_model(
    cls: type, path: Path, config: Path, subfolder: str, dtype: torch.dtype, prefix: str = ""
) -> torch.nn.Module:
    """A diffusers model from a single file, with `config` (a diffusers folder) / `subfolder` as its config.
    `prefix`: what diffusers' converter expects in front of an original-layout file's keys, which a file of the
    model alone may leave out (given by the caller's family table)."""
    if not callable(getattr(cls, "from_single_file", None)):
        raise WeightsFileError(f"{path.name}: diffusers cannot load a {cls.__name__} from a single file")
    options: dict[str, Any] = {"config": str(config), "subfolder": subfolder, "torch_dtype": dtype}
    if path.suffix == GGUF_SUFFIX:
        from diffusers import GGUFQuantizationConfig

        options["quantization_config"] = GGUFQuantizationConfig(compute_dtype=dtype)
    source = prefixed(path, cls, config, subfolder, prefix) if prefix and path.suffix == SAFETENSORS_SUFFIX else None
    try:
        model = cls.from_single_file(source or str(path), local_files_only=True, **options)
    except (OSError, ValueError, KeyError, RuntimeError, TypeError, AttributeError) as error:
        raise WeightsFileError(
            f"{path.name}: cannot be read as the {cls.__name__} of {config.name}/{subfolder} "
            f"({type(error).__name__}: {_first_line(error)})"
        ) from error
    check_complete(model, f"{path.name}: as the {cls.__name__} of {config.name}/{subfolder}")
    return model


def prefixed(path: Path, cls: type, config: Path, subfolder: str, prefix: str) -> dict[str, torch.Tensor] | None:
    """The file's weights under `prefix`, for a file in the original layout without it (None: as it is)."""
    from safetensors.torch import load_file

    header = read_header(path)
    if any(name.startswith(prefix) for name in header):
        return None
    with torch.device("meta"):
        own = set(cls.from_config(cls.load_config(str(config), subfolder=subfolder)).state_dict())
    if set(header) <= own:  # the diffusers layout: nothing to convert
        return None
    return {prefix + name: tensor for name, tensor in load_file(str(path)).items()}


def check_complete(model: torch.nn.Module, what: str) -> None:
    """Refuse a model that a file left partly without weights (diffusers leaves those on the meta device)."""
    empty = [name for name, tensor in [*model.named_parameters(), *model.named_buffers()] if tensor.is_meta]
    if empty:
        raise WeightsFileError(f"{what}: the file has no weights for {_few(empty)}")


def load_transformers_model(
    cls: type, path: Path, config: Path, subfolder: str, dtype: torch.dtype
) -> torch.nn.Module:
    """A transformers model (a text encoder) from a file in transformers' key layout, maybe under a prefix."""
    from safetensors.torch import load_file

    if path.suffix != SAFETENSORS_SUFFIX:
        raise WeightsFileError(f"{path.name}: text encoders are read from .safetensors files")
    model_config = cls.config_class.from_pretrained(str(config), subfolder=subfolder)
    header = read_header(path)
    prefix = key_prefix(path, header, expected_keys(cls, model_config))
    weights = {name[len(prefix) :]: tensor for name, tensor in load_file(str(path)).items() if name.startswith(prefix)}
    model, info = cls.from_pretrained(
        None, config=model_config, state_dict=weights, torch_dtype=dtype, output_loading_info=True
    )
    problems = {kind: sorted(info.get(kind) or ()) for kind in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    problems["unexpected_keys"] += [name for name in header if not name.startswith(prefix)]
    if any(problems.values()):
        found = "; ".join(f"{kind.replace('_', ' ')}: {_few(keys)}" for kind, keys in problems.items() if keys)
        raise WeightsFileError(
            f"{path.name}: does not match the {cls.__name__} of {config.name}/{subfolder} ({found})"
        )
    return model


def expected_keys(cls: type, model_config: Any) -> dict[str, torch.Size]:
    """The state-dict keys and shapes of `cls` built from its config on the meta device (nothing allocated)."""
    with torch.device("meta"):
        model = cls(model_config)
    return {name: tensor.shape for name, tensor in model.state_dict().items()}


def key_prefix(path: Path, header: dict[str, torch.Tensor], expected: Mapping[str, Any]) -> str:
    """The prefix under which most of the file's keys end in one of `expected` (at a `.` boundary)."""
    prefixes: Counter[str] = Counter()
    for name in header:
        parts = name.split(".")
        for cut in range(len(parts)):
            if ".".join(parts[cut:]) in expected:
                prefixes[".".join(parts[:cut]) + ("." if cut else "")] += 1
                break
    if not prefixes:
        raise WeightsFileError(f"{path.name}: no key matches the model (first keys: {_few(sorted(header))})")
    return prefixes.most_common(1)[0][0]


def _few(keys: list[str], shown: int = 5) -> str:
    more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
    return ", ".join(keys[:shown]) + more


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [""])[0][:300]
