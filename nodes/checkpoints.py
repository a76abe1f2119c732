"""Load Checkpoint (Diffusers): an all-in-one single file from ComfyUI's `checkpoints` folders plus a diffusers
config folder (full, or configs only) -> components.

Diffusers' pipeline-level single-file loading does the conversion (`<Pipeline>.from_single_file(path,
config=folder)`: the denoiser, VAE and text encoders of an original-format checkpoint, each with the folder's
config; tokenizers and scheduler from the folder). The file is checked from its header first: a truncated file,
a LoRA or a lone VAE, or a checkpoint that diffusers sees as another family than the folder's is refused before
its weights are read.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import diffusers
import torch
from comfy_api.latest import io
from diffusers import ModularPipeline
from diffusers.loaders.single_file_utils import infer_diffusers_model_type

from ..adapters.factory import ComponentsType
from ..adapters.lora import ADAPTER_SUFFIX
from ..adapters.quiet import known_benign_diffusers_lines_hidden
from ..adapters.weight_files import WeightsFileError, check_complete, read_header
from .families import checkpoint_family, family_spec
from .loaders import (
    DEFAULT,
    DENOISER_DTYPES,
    DTYPES,
    TEXT_ENCODER_DTYPE_TOOLTIP,
    TEXT_ENCODER_DTYPES,
    WEIGHT_DTYPE_TOOLTIP,
    FoundModels,
    make_bundle,
    model_folders,
    model_names,
    pipeline_family,
)
from .model_files import CHECKPOINTS, checkpoint_files, file_error
from .naming import ROOT_CATEGORY

logger = logging.getLogger(__name__)

NAME = "Load Checkpoint (Diffusers)"
VAE_PREFIXES = ("encoder.", "decoder.", "quant_conv.", "post_quant_conv.")  # an LDM VAE's own top level


class LoadCheckpoint(io.ComfyNode):
    # The file and folder lists are the machine's: left out of the schema snapshot.
    MACHINE_OPTIONS = ("ckpt_name", "config")

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MDiff_LoadCheckpoint",
            display_name=NAME,
            category=f"{ROOT_CATEGORY}/loaders",
            description="Loads an all-in-one checkpoint (models/checkpoints, e.g. an SDXL fine-tune) with the "
            "configs of a diffusers folder of the same model (a full folder, or one with only its config and "
            "tokenizer files): diffusers converts the weights. Its models are handed to ComfyUI's model management.",
            inputs=[
                io.Combo.Input(
                    "ckpt_name", options=list(checkpoint_files()), tooltip="A .safetensors file in models/checkpoints."
                ),
                io.Combo.Input(
                    "config",
                    options=list(model_folders()),
                    tooltip="A diffusers folder of the same architecture (models/diffusers/<name>): its configs, "
                    "tokenizers and scheduler are used, its weights are not.",
                ),
                io.Combo.Input("dtype", options=list(DTYPES), default="float32", tooltip="Compute dtype."),
                io.Combo.Input(
                    "weight_dtype", options=list(DENOISER_DTYPES), default=DEFAULT, tooltip=WEIGHT_DTYPE_TOOLTIP
                ),
                io.Combo.Input(
                    "text_encoder_weight_dtype",
                    options=list(TEXT_ENCODER_DTYPES),
                    default=DEFAULT,
                    tooltip=TEXT_ENCODER_DTYPE_TOOLTIP,
                ),
            ],
            outputs=[
                ComponentsType.Output("components_out", display_name="components", tooltip="The loaded components.")
            ],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def validate_inputs(cls, ckpt_name: str | None = None, config: str | None = None, **options: str) -> bool | str:
        # ComfyUI 0.3.75 does not check V3 combo values itself (and a path must not escape the folders).
        if ckpt_name is not None and ckpt_name not in checkpoint_files():
            return f"ckpt_name: {ckpt_name!r} is not a .safetensors file in ComfyUI's checkpoints folders"
        if config is not None and config not in model_folders():
            return f"config: {config!r} is not a diffusers folder under ComfyUI's diffusers paths"
        for name, allowed in (
            ("dtype", DTYPES),
            ("weight_dtype", DENOISER_DTYPES),
            ("text_encoder_weight_dtype", TEXT_ENCODER_DTYPES),
        ):
            if options.get(name) is not None and options[name] not in allowed:
                return f"{name}: {options[name]!r} is not one of {', '.join(allowed)}"
        return True

    @classmethod
    def execute(
        cls,
        ckpt_name: str,
        config: str,
        dtype: str = "float32",
        weight_dtype: str = DEFAULT,
        text_encoder_weight_dtype: str = DEFAULT,
    ) -> io.NodeOutput:
        label = f"node {cls.hidden.unique_id if cls.hidden else '?'} '{NAME}'"
        path, folder = checkpoint_files().get(ckpt_name), model_folders().get(config)
        if path is None or folder is None:
            raise ValueError(f"{label}: {ckpt_name!r} or {config!r} is not in ComfyUI's model folders any more")
        try:
            with known_benign_diffusers_lines_hidden():
                pipeline, models = load_checkpoint(path, folder, DTYPES[dtype])
        except WeightsFileError as error:
            raise file_error(label, f"{CHECKPOINTS}/{ckpt_name}", error) from error
        missing = tuple(name for name in models if getattr(pipeline, name, None) is None)
        found = FoundModels(folder=folder, names=models, missing=missing)
        return io.NodeOutput(
            make_bundle(pipeline, ckpt_name, found, DTYPES[dtype], weight_dtype, text_encoder_weight_dtype)
        )


def load_checkpoint(path: Path, folder: Path, dtype: torch.dtype) -> tuple[ModularPipeline, list[str]]:
    """The folder's modular pipeline with the checkpoint's models in it (see the module docstring), and the
    names of the folder's models."""
    header = read_header(path)
    pipeline = ModularPipeline.from_pretrained(str(folder))
    names = model_names(pipeline)
    check_checkpoint(header, pipeline, folder.name)
    standard = standard_pipeline_class(folder)
    try:
        loaded = standard.from_single_file(str(path), config=str(folder), torch_dtype=dtype, local_files_only=True)
    except (OSError, ValueError, KeyError, RuntimeError, TypeError) as error:
        reason = (str(error).strip().splitlines() or [""])[0][:300]
        raise WeightsFileError(
            f"diffusers cannot read it as a {standard.__name__}: {type(error).__name__}: {reason}"
        ) from error
    models = {n: c for n, c in loaded.components.items() if n in pipeline._component_specs and c is not None}
    for name, model in models.items():
        if isinstance(model, torch.nn.Module):
            check_complete(model, f"its {name}")
    pipeline.update_components(**models)
    return pipeline, names


def check_checkpoint(header: dict[str, torch.Tensor], pipeline: ModularPipeline, config: str) -> None:
    """Refuse, from the header alone, what is not an all-in-one checkpoint of the folder's family."""
    keys = list(header)
    if any(ADAPTER_SUFFIX.search(key) for key in keys):  # the LoRA loader's own key rule
        raise WeightsFileError("it is a LoRA: put it in models/loras and use Load LoRA (Diffusers)")
    if keys and all(key.startswith(VAE_PREFIXES) for key in keys):
        raise WeightsFileError("it is a VAE alone: put it in models/vae and use Replace Component (Diffusers)")
    family = pipeline_family(pipeline)
    try:
        model_type = infer_diffusers_model_type(header)
    except (KeyError, IndexError, TypeError, RuntimeError):  # a layout diffusers' checks do not expect
        return
    apparent = checkpoint_family(model_type)
    if apparent is not None and family is not None and apparent != family:
        raise WeightsFileError(
            f"diffusers sees a {family_spec(apparent).label} checkpoint ({model_type}), but the config folder "
            f"{config} is a {family_spec(family).label} model: choose a {family_spec(apparent).label} config folder"
        )


def standard_pipeline_class(folder: Path) -> type:
    """The folder's diffusers pipeline class (model_index.json), which reads all-in-one single files."""
    index = folder / "model_index.json"
    class_name = json.loads(index.read_text()).get("_class_name") if index.is_file() else None
    standard = getattr(diffusers, class_name, None) if class_name else None
    if standard is None or not callable(getattr(standard, "from_single_file", None)):
        raise WeightsFileError(
            f"diffusers has no all-in-one checkpoint loading for {folder.name} ({class_name or 'no model_index.json'})"
            ": load its models with Replace Component (Diffusers) from diffusion_models, vae and text_encoders"
        )
    return standard
