"""Replace Component (Diffusers): components in, components out with one model component replaced by a file
from ComfyUI's model folders (a denoiser from diffusion_models/unet, a VAE from vae, a text encoder from
text_encoders/clip) or by the same component of another diffusers folder.

The bundle's own config of that component is the config (`ComponentsBundle.config_folders`), so a configs-only
folder plus single files is a whole model. Diffusers and transformers read the formats
(`adapters/weight_files.py`); the new module goes to ComfyUI's model management like the loader's. The input
bundle is unchanged, so several Replace Component nodes chain, and other branches keep the original.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
import transformers
from comfy_api.latest import io

from ..adapters.components import ComponentsBundle
from ..adapters.factory import ComponentsType
from ..adapters.models import original_class
from ..adapters.quiet import known_benign_diffusers_lines_hidden
from ..adapters.weight_files import (
    GGUF_SUFFIX,
    WeightsFileError,
    expected_keys,
    key_prefix,
    load_diffusers_model,
    load_transformers_model,
    read_header,
)
from .families import family_spec
from .loaders import (
    DEFAULT,
    DENOISER_DTYPES,
    DENOISERS,
    TEXT_ENCODER_PREFIX,
    WEIGHT_DTYPE_TOOLTIP,
    has_weights,
)
from .loaders import FOLDER as DIFFUSERS_FOLDER
from .model_files import DIFFUSION_MODELS, TEXT_ENCODERS, VAE, component_sources, file_error, fits, source_kind
from .naming import ROOT_CATEGORY

logger = logging.getLogger(__name__)

AUTO = "auto"
COMPONENTS = (AUTO, *DENOISERS[:3], "vae", "text_encoder", "text_encoder_2", "text_encoder_3")
NAME = "Replace Component (Diffusers)"


class ReplaceComponent(io.ComfyNode):
    MACHINE_OPTIONS = ("source",)  # the machine's files: left out of the schema snapshot

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MDiff_ReplaceComponent",
            display_name=NAME,
            category=f"{ROOT_CATEGORY}/loaders",
            description="Replaces one model of loaded components with a file from ComfyUI's model folders "
            "(diffusion_models/unet, vae, text_encoders/clip; .safetensors in the original or diffusers layout, "
            "or .gguf) or with the same component of another diffusers folder. The components' own config of "
            "that model is used; the input components stay unchanged.",
            inputs=[
                ComponentsType.Input("components", tooltip="Loaded components (Load Diffusers Components)."),
                io.Combo.Input(
                    "source",
                    options=list(component_sources()),
                    tooltip="The new weights: a file in diffusion_models (or unet), vae, text_encoders (or clip), "
                    "or a diffusers folder.",
                ),
                io.Combo.Input(
                    "component",
                    options=list(COMPONENTS),
                    default=AUTO,
                    tooltip="Which model to replace. auto: the denoiser for a diffusion_models file, the VAE for "
                    "a vae file, the text encoder the file's keys fit for a text_encoders file.",
                ),
                io.Combo.Input(
                    "weight_dtype", options=list(DENOISER_DTYPES), default=DEFAULT, tooltip=WEIGHT_DTYPE_TOOLTIP
                ),
            ],
            outputs=[
                ComponentsType.Output(
                    "components_out", display_name="components", tooltip="The components with the new model."
                )
            ],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def validate_inputs(
        cls, source: str | None = None, component: str | None = None, weight_dtype: str | None = None, **_: Any
    ) -> bool | str:
        # ComfyUI 0.3.75 does not check V3 combo values itself (and a path must not escape the folders).
        if source is not None and source not in component_sources():
            return f"source: {source!r} is not a file in ComfyUI's diffusion_models, vae or text_encoders folders"
        if component is not None and component not in COMPONENTS:
            return f"component: {component!r} is not one of {', '.join(COMPONENTS)}"
        if source is not None and component not in (None, AUTO) and not fits(source_kind(source), component):
            return f"component: a {source_kind(source)} file cannot replace {component}"
        if weight_dtype is not None and weight_dtype not in DENOISER_DTYPES:
            return f"weight_dtype: {weight_dtype!r} is not one of {', '.join(DENOISER_DTYPES)}"
        return True

    @classmethod
    def execute(
        cls, components: ComponentsBundle, source: str, component: str = AUTO, weight_dtype: str = DEFAULT
    ) -> io.NodeOutput:
        label = f"node {cls.hidden.unique_id if cls.hidden else '?'} '{NAME}'"
        path = component_sources().get(source)
        if path is None:
            raise ValueError(f"{label}: {source!r} is not in ComfyUI's model folders any more")
        try:
            with known_benign_diffusers_lines_hidden():
                name = chosen_component(components, source, path, component)
                module, config_folder = load_component(components, name, source, path, weight_dtype)
        except WeightsFileError as error:
            raise file_error(label, source, error) from error
        bundle = components.replaced(
            name,
            module,
            source,
            weight_dtype=None if weight_dtype == DEFAULT else weight_dtype,
            config_folder=config_folder,
        )
        logger.info("%s: %s is now %s (%s)", label, name, source, type(module).__name__)
        return io.NodeOutput(bundle)


def chosen_component(bundle: ComponentsBundle, source: str, path: Path, component: str) -> str:
    """The component to replace: as chosen (one the bundle has), or what `auto` finds for the source's kind."""
    kind, names = source_kind(source), model_components(bundle)
    if component != AUTO:
        if component not in names:
            raise WeightsFileError(f"the components have no {component} (they have {', '.join(names)})")
        return component
    if kind == DIFFUSION_MODELS:
        found = [name for name in names if name in DENOISERS]
    elif kind == VAE:
        found = [name for name in names if name == "vae"]
    elif kind == TEXT_ENCODERS:
        found = fitting_text_encoders(bundle, path, [name for name in names if name.startswith(TEXT_ENCODER_PREFIX)])
    else:
        raise WeightsFileError("choose the component to take from a diffusers folder (component: auto)")
    if len(found) != 1:
        which = f"one of {', '.join(found)}" if found else f"none of {', '.join(names)} fits"
        raise WeightsFileError(f"auto cannot tell which component to replace ({which}): choose the component")
    return found[0]


def model_components(bundle: ComponentsBundle) -> list[str]:
    """The bundle's model components: loaded ones and those its folder has no weights for."""
    return list(bundle.config_folders)


def fitting_text_encoders(bundle: ComponentsBundle, path: Path, names: list[str]) -> list[str]:
    """The text encoders a file holds exactly (every key under one prefix, with the model's shapes; keys the
    model ties to another may be left out); read from the header only."""
    header, fitting = read_header(path), []
    for name in names:
        cls, config = component_class(bundle, name), Path(bundle.config_folders[name])
        expected = expected_keys(cls, cls.config_class.from_pretrained(str(config), subfolder=name))
        try:
            prefix = key_prefix(path, header, expected)
        except WeightsFileError:
            continue
        stored = {key[len(prefix) :]: header[key].shape for key in header}
        required = {key: shape for key, shape in expected.items() if key not in tied_keys(cls)}
        if all(key.startswith(prefix) for key in header) and required.items() <= stored.items():
            fitting.append(name)
    return fitting


def tied_keys(cls: type) -> set[str]:
    """Keys a file may leave out because the model ties them to another (T5's embed_tokens)."""
    return set(getattr(cls, "_tied_weights_keys", None) or ())


def component_class(bundle: ComponentsBundle, name: str) -> type:
    return original_class(bundle.pipeline._component_specs[name].type_hint)


def load_component(
    bundle: ComponentsBundle, name: str, source: str, path: Path, weight_dtype: str
) -> tuple[torch.nn.Module, str]:
    """The new module for component `name`, and the folder its config comes from."""
    cls, dtype = component_class(bundle, name), bundle.dtype
    if source_kind(source) == DIFFUSERS_FOLDER:
        return from_folder(cls, name, path, dtype), str(path)
    config = Path(bundle.config_folders[name])
    if path.suffix == GGUF_SUFFIX and weight_dtype != DEFAULT:
        raise WeightsFileError(f"a GGUF file is quantized already: set weight_dtype to {DEFAULT}")
    read_header(path)  # a bad file is refused before anything is allocated
    if issubclass(cls, transformers.PreTrainedModel):
        if path.suffix == GGUF_SUFFIX:
            raise WeightsFileError("text encoders are read from .safetensors files (GGUF text encoders: not yet)")
        return load_transformers_model(cls, path, config, name, dtype), str(config)
    prefix = family_spec(bundle.family).denoiser_file_prefix if bundle.family and name in DENOISERS else ""
    return load_diffusers_model(cls, path, config, name, dtype, prefix), str(config)


def from_folder(cls: type, name: str, folder: Path, dtype: torch.dtype) -> torch.nn.Module:
    if not has_weights(folder / name):
        raise WeightsFileError(f"the folder has no weights for {name}")
    index = json.loads((folder / "model_index.json").read_text()) if (folder / "model_index.json").is_file() else {}
    found = (index.get(name) or [None, None])[1]
    if found is not None and found != cls.__name__:
        raise WeightsFileError(f"its {name} is a {found}, the components' is a {cls.__name__}")
    try:
        return cls.from_pretrained(str(folder), subfolder=name, torch_dtype=dtype, local_files_only=True)
    except (OSError, ValueError, RuntimeError) as error:
        raise WeightsFileError(f"its {name} is not a {cls.__name__} ({type(error).__name__}: {error})") from error
