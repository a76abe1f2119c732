"""Load LoRA (Diffusers): components in, components out with a LoRA from ComfyUI's `loras` folders applied
through ComfyUI's patcher (`adapters/lora.py`). Chain it for a stack; the input bundle and every other branch
that uses it stay as they are.
"""

from __future__ import annotations

import logging
from typing import Any

import folder_paths
from comfy_api.latest import io

from ..adapters.components import ComponentsBundle
from ..adapters.factory import ComponentsType
from ..adapters.lora import LoraFile, module_key_map, patches_for, read_lora
from ..adapters.quiet import known_benign_diffusers_lines_hidden
from .families import lora_family
from .loaders import TEXT_ENCODER_PREFIX
from .naming import ROOT_CATEGORY

logger = logging.getLogger(__name__)

FOLDER = "loras"
STRENGTH = {"default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01}


class LoraLoader(io.ComfyNode):
    MACHINE_OPTIONS = ("lora_name",)  # the machine's files: left out of the schema snapshot

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MDiff_LoraLoader",
            display_name="Load LoRA (Diffusers)",
            category=f"{ROOT_CATEGORY}/loaders",
            description="Applies a LoRA from ComfyUI's loras folders to loaded components, through ComfyUI's "
            "patcher (the file read by the family's diffusers LoRA loader: diffusers/PEFT, kohya and the other "
            "formats diffusers converts). Chain it for several LoRAs; the input components stay unchanged.",
            inputs=[
                ComponentsType.Input("components", tooltip="Loaded components (Load Diffusers Components)."),
                io.Combo.Input(
                    "lora_name", options=folder_paths.get_filename_list(FOLDER), tooltip="A file in models/loras."
                ),
                io.Float.Input("strength_model", **STRENGTH, tooltip="Strength on the denoiser; 0 leaves it out."),
                io.Float.Input(
                    "strength_text_encoder", **STRENGTH, tooltip="Strength on the text encoders; 0 leaves them out."
                ),
            ],
            outputs=[
                ComponentsType.Output(
                    "components_out", display_name="components", tooltip="The components with the LoRA applied."
                )
            ],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def validate_inputs(cls, lora_name: str | None = None, **_: Any) -> bool | str:
        # ComfyUI 0.3.75 does not check V3 combo values itself (and a path must not escape the folder).
        if lora_name is not None and lora_name not in folder_paths.get_filename_list(FOLDER):
            return f"lora_name: {lora_name!r} is not a file in ComfyUI's loras folders"
        return True

    @classmethod
    def execute(
        cls, components: ComponentsBundle, lora_name: str, strength_model: float, strength_text_encoder: float
    ) -> io.NodeOutput:
        label = f"node {cls.hidden.unique_id if cls.hidden else '?'} 'Load LoRA (Diffusers)'"
        path = folder_paths.get_full_path_or_raise(FOLDER, lora_name)
        try:
            lora = lora_file(type(components.pipeline), path, components)
        except (OSError, ValueError, KeyError, RuntimeError) as error:
            raise ValueError(
                f"{label}: {lora_name} cannot be read as a LoRA: {type(error).__name__}: {error}"
            ) from error
        if lora.empty:
            raise ValueError(
                f"{label}: {lora_name} has no weights for this '{components.family}' model "
                f"({components.source}); it looks like a LoRA for {lora_family(lora.unmatched) or 'another model'}"
            )
        patches, missing = {}, list(lora.unmatched)
        for name, part in lora.components.items():
            strength = strength_text_encoder if name.startswith(TEXT_ENCODER_PREFIX) else strength_model
            patch, unmatched = patches_for(part, module_key_map(components.patchers[name].model))
            missing += [f"{name}.{key}" for key in unmatched]
            if strength != 0 and patch:
                patches[name] = (patch, strength)
        if missing:
            logger.warning("%s: %d keys of %s match no module: %s", label, len(missing), lora_name, ", ".join(missing))
        return io.NodeOutput(components.patched(patches, f"LoRA {lora_name}"))


def lora_file(mixin: type, path: str, bundle: ComponentsBundle) -> LoraFile:
    """The file as the bundle's family reads it."""
    if not callable(getattr(mixin, "lora_state_dict", None)):
        raise ValueError(f"'{bundle.family}' models have no LoRA loader in diffusers ({mixin.__name__})")
    with known_benign_diffusers_lines_hidden():
        return read_lora(mixin, path, {name: bundle.get(name) for name in bundle.patchers})
