"""Loading diffusers components from ComfyUI's `models/diffusers` folders."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import comfy.latent_formats
import folder_paths
import torch
from comfy_api.latest import io
from diffusers import ModularPipeline

from ..adapters.components import ComponentsBundle
from ..adapters.factory import ComponentsType
from ..adapters.quiet import known_benign_diffusers_lines_hidden
from .families import family_spec
from .naming import ROOT_CATEGORY

logger = logging.getLogger(__name__)

FOLDER = "diffusers"
INDEX_FILES = ("modular_model_index.json", "model_index.json")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
DEFAULT = "default"  # weights stored in `dtype`
DENOISER_DTYPES = (DEFAULT, "fp8_e4m3fn", "fp8_e4m3fn_fast", "fp8_e5m2")  # ComfyUI's UNet loader's
TEXT_ENCODER_DTYPES = (DEFAULT, "fp8_e4m3fn", "fp8_e5m2")
# Which components each option applies to, by diffusers' component names (the same in every family).
DENOISERS = ("unet", "transformer", "transformer_2", "transformer_3", "prior")
TEXT_ENCODER_PREFIX = "text_encoder"
WEIGHT_DTYPE_TOOLTIP = (
    "How the denoiser's weights (UNet / transformer) are stored: default (in dtype), or fp8 like ComfyUI's "
    "Load Diffusion Model: about half the memory of float16, computed in dtype layer by layer; _fast also "
    "computes fp8 matmuls where the GPU supports them (else as fp8_e4m3fn)."
)
TEXT_ENCODER_DTYPE_TOOLTIP = (
    "How the text encoders' weights are stored: default (in dtype), or fp8 (about half of float16)."
)
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
WEIGHT_SUFFIXES = (".safetensors", ".safetensors.index.json", ".gguf", ".bin.index.json", *PICKLE_SUFFIXES)


def model_folders() -> dict[str, Path]:
    """Name -> path of every diffusers model folder (one holding a model index) under ComfyUI's
    `diffusers` model paths, including those added by extra_model_paths.yaml."""
    found: dict[str, Path] = {}
    for root in folder_paths.get_folder_paths(FOLDER):
        root_path = Path(root)
        if not root_path.is_dir():
            continue
        for directory, subdirectories, files in os.walk(root_path, followlinks=True):
            if any(index in files for index in INDEX_FILES):
                name = Path(directory).relative_to(root_path).as_posix()
                if name != ".":
                    found.setdefault(name, Path(directory))
                subdirectories.clear()  # a model's own subfolders are components, not models
    return dict(sorted(found.items()))


def pickle_weights(folder: Path) -> list[str]:
    """Weight files that can run code when loaded (pickle), in component folders without safetensors."""
    unsafe = []
    for component in sorted(p for p in folder.iterdir() if p.is_dir()):
        files = [f.name for f in component.iterdir() if f.is_file()]
        if not any(name.endswith(".safetensors") for name in files):
            unsafe += [f"{component.name}/{name}" for name in files if name.endswith(PICKLE_SUFFIXES)]
    return unsafe


def open_pipeline(folder: Path) -> ModularPipeline:
    """`ModularPipeline.from_pretrained(folder)`, which finds the modular class of a folder with only a
    model_index.json through diffusers' auto-pipeline tables. A classic pipeline class missing from them
    (`HunyuanVideo15Pipeline` in diffusers 0.42.1) would give a bare ModularPipeline without blocks, which
    diffusers refuses: such a folder gets the modular class of the same name (`<X>Pipeline` ->
    `<X>ModularPipeline`), made as from_pretrained makes it (its default blocks, specs from model_index.json)."""
    modular = _unmapped_modular_class(folder)
    if modular is None:
        return ModularPipeline.from_pretrained(str(folder))
    logger.info("%s: %s from model_index.json (not in diffusers' auto-pipeline tables)", folder, modular.__name__)
    return modular(blocks=None, pretrained_model_name_or_path=str(folder))


def _unmapped_modular_class(folder: Path) -> type[ModularPipeline] | None:
    if (folder / "modular_model_index.json").is_file() or not (folder / "model_index.json").is_file():
        return None
    import diffusers
    from diffusers.pipelines.auto_pipeline import _get_model

    class_name = json.loads((folder / "model_index.json").read_text(encoding="utf-8")).get("_class_name")
    if not isinstance(class_name, str) or not class_name.endswith("Pipeline") or _get_model(class_name) is not None:
        return None
    modular = getattr(diffusers, class_name.removesuffix("Pipeline") + "ModularPipeline", None)
    if isinstance(modular, type) and issubclass(modular, ModularPipeline) and modular.default_blocks_name:
        return modular
    return None


def pipeline_family(pipeline: ModularPipeline) -> str | None:
    """The `diffusers.modular_pipelines` family folder of the pipeline class that diffusers resolved
    from the folder's model index (None for a generic ModularPipeline)."""
    parts = type(pipeline).__module__.split(".")
    if parts[:2] == ["diffusers", "modular_pipelines"] and len(parts) > 3:
        return parts[2]
    return None


class LoadComponents(io.ComfyNode):
    # The model list is the machine's model folders: left out of the schema snapshot.
    MACHINE_OPTIONS = ("model",)

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MDiff_LoadComponents",
            display_name="Load Diffusers Components",
            category=f"{ROOT_CATEGORY}/loaders",
            description="Loads a diffusers model folder (models/diffusers/<name>, or any diffusers path of "
            "extra_model_paths.yaml) with ModularPipeline.from_pretrained + load_components. Its models are "
            "handed to ComfyUI's model management.",
            inputs=[
                io.Combo.Input(
                    "model",
                    options=list(model_folders()),
                    tooltip="A folder with a model_index.json under ComfyUI's diffusers model folders.",
                ),
                io.Combo.Input("dtype", options=list(DTYPES), default="float32", tooltip="Weight dtype."),
                io.Boolean.Input(
                    "allow_pickle_weights",
                    default=False,
                    optional=True,
                    tooltip="Also load .bin/.pt weights (pickle can run code). Only for folders you trust.",
                ),
                # Appended, so canvas files saved before they existed keep their values in place.
                io.Combo.Input(
                    "weight_dtype",
                    options=list(DENOISER_DTYPES),
                    default=DEFAULT,
                    optional=True,
                    tooltip=WEIGHT_DTYPE_TOOLTIP,
                ),
                io.Combo.Input(
                    "text_encoder_weight_dtype",
                    options=list(TEXT_ENCODER_DTYPES),
                    default=DEFAULT,
                    optional=True,
                    tooltip=TEXT_ENCODER_DTYPE_TOOLTIP,
                ),
            ],
            outputs=[
                ComponentsType.Output(
                    "components_out",
                    display_name="components",
                    tooltip="The loaded components; connect to every block node of this model.",
                )
            ],
        )

    @classmethod
    def validate_inputs(
        cls,
        model: str | None = None,
        dtype: str | None = None,
        weight_dtype: str | None = None,
        text_encoder_weight_dtype: str | None = None,
    ) -> bool | str:
        # ComfyUI 0.3.75 does not check V3 combo values itself, so an unknown or path-like name
        # would only fail when the node runs; rejected here, it never reaches the queue.
        if model is None or dtype is None:
            return True  # missing: ComfyUI's own "Required input is missing" answer names it
        folders = model_folders()
        if model not in folders:
            available = ", ".join(folders) or "none: put diffusers folders in models/diffusers"
            return (
                f"model: {model!r} is not a diffusers folder under ComfyUI's diffusers paths (available: {available})"
            )
        if dtype not in DTYPES:
            return f"dtype: {dtype!r} is not one of {', '.join(DTYPES)}"
        for name, value, options in (
            ("weight_dtype", weight_dtype, DENOISER_DTYPES),
            ("text_encoder_weight_dtype", text_encoder_weight_dtype, TEXT_ENCODER_DTYPES),
        ):
            if value is not None and value not in options:
                return f"{name}: {value!r} is not one of {', '.join(options)}"
        return True

    @classmethod
    def execute(
        cls,
        model: str,
        dtype: str,
        allow_pickle_weights: bool = False,
        weight_dtype: str = DEFAULT,
        text_encoder_weight_dtype: str = DEFAULT,
    ) -> io.NodeOutput:
        folder = checked_folder(model, allow_pickle_weights)
        with known_benign_diffusers_lines_hidden():
            pipeline = open_pipeline(folder)
            models = model_names(pipeline)
            loadable, missing = split_by_weights(pipeline, folder, models)
            pipeline.load_components(names=loadable, dtype=DTYPES[dtype])
        failed = [name for name in loadable if getattr(pipeline, name, None) is None]
        if failed:  # diffusers logs the reason and leaves the component unset
            raise ValueError(f"Load Diffusers Components: {model!r}: {', '.join(failed)} failed to load (see the log)")
        found = FoundModels(folder=folder, names=models, missing=missing)
        return io.NodeOutput(
            make_bundle(pipeline, model, found, DTYPES[dtype], weight_dtype, text_encoder_weight_dtype)
        )


def split_by_weights(pipeline: ModularPipeline, folder: Path, models: list[str]) -> tuple[list[str], tuple[str, ...]]:
    """The folder's components to load (index entries with a class: tokenizers, schedulers, and models with
    weight files), and its models without weights (a configs-only folder: supplied by single files)."""
    loadable, missing = [], []
    for name in pipeline.pretrained_component_names:
        spec = pipeline._component_specs[name]
        # Only the folder's index entries with a class ([null, null]: e.g. an absent image encoder).
        if spec.type_hint is None or spec.pretrained_model_name_or_path is None:
            continue
        (missing if name in models and not has_weights(folder / name) else loadable).append(name)
    return loadable, tuple(missing)


def model_names(pipeline: ModularPipeline) -> list[str]:
    """The models of a folder's index (components whose spec points at the folder and is a torch module
    class), read from a pipeline fresh from `from_pretrained` (loading replaces the specs)."""
    specs = pipeline._component_specs
    return [
        name
        for name in pipeline.pretrained_component_names
        if specs[name].pretrained_model_name_or_path is not None and is_model_class(specs[name].type_hint)
    ]


@dataclass(frozen=True, kw_only=True)
class FoundModels:
    """A folder's models (`model_names`), and those of them that got no weights."""

    folder: Path
    names: list[str]
    missing: tuple[str, ...] = ()


def is_model_class(type_hint: object) -> bool:
    return isinstance(type_hint, type) and issubclass(type_hint, torch.nn.Module)


def has_weights(component: Path) -> bool:
    return component.is_dir() and any(f.name.endswith(WEIGHT_SUFFIXES) for f in component.iterdir())


def make_bundle(
    pipeline: ModularPipeline,
    source: str,
    found: FoundModels,
    dtype: torch.dtype,
    weight_dtype: str = DEFAULT,
    text_encoder_weight_dtype: str = DEFAULT,
) -> ComponentsBundle:
    """The components socket's value for a pipeline whose components are loaded, with its family's settings."""
    family = pipeline_family(pipeline)
    spec = family_spec(family) if family else None
    latent_format = getattr(comfy.latent_formats, spec.latent_format) if spec and spec.latent_format else None
    bundle = ComponentsBundle.from_pipeline(
        pipeline,
        source,
        family=family,
        latent_format=latent_format() if latent_format else None,
        preview_latents=spec.preview_latents if spec else None,
        weight_dtypes=weight_dtypes(pipeline.components, weight_dtype, text_encoder_weight_dtype),
        batched_guidance_proven=bool(spec and spec.batched_guidance),
        config_folders={name: str(found.folder) for name in found.names},
        missing=found.missing,
        dtype=dtype,
    )
    logger.info("loaded %r (family %s, %s)", bundle, family, type(pipeline).__name__)
    if found.missing:
        logger.info("%s has no weights for %s: supply them with Replace Component", source, ", ".join(found.missing))
    return bundle


def checked_folder(model: str, allow_pickle_weights: bool) -> Path:
    folders = model_folders()
    if model not in folders:
        raise ValueError(f"Load Diffusers Components: no model folder named {model!r} (found: {list(folders)})")
    unsafe = pickle_weights(folders[model])
    if unsafe and not allow_pickle_weights:
        raise ValueError(
            f"Load Diffusers Components: {model!r} has pickle weights without safetensors ({', '.join(unsafe)}); "
            "enable allow_pickle_weights only if you trust this folder"
        )
    return folders[model]


def weight_dtypes(components: dict, denoiser: str, text_encoders: str) -> dict[str, str]:
    """Component -> how its weights are stored, for the options that are not the default."""
    chosen = {}
    for name in components:
        option = denoiser if name in DENOISERS else text_encoders if name.startswith(TEXT_ENCODER_PREFIX) else DEFAULT
        if option != DEFAULT:
            chosen[name] = option
    return chosen
