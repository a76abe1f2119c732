"""What the per-family table (`families.py`) can say about a family, and about one of its nodes.

Every field is keyword-only: a table row reads `FamilySpec(label="Echo", class_node_names={...})`,
never a row of unnamed dicts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..adapters.sockets import DEFAULT_MAPPING, SocketMapping
from ..adapters.spec import NameRule
from .naming import WORDS


@dataclass(frozen=True, kw_only=True)
class NodeOverride:
    """Changes to one generated node (a released id, its widget list, ...). None: generated."""

    node_id: str | None = None
    display_name: str | None = None
    description: str | None = None
    inputs: Sequence[str] | None = None
    outputs: Sequence[str] | None = None
    fixed_inputs: Mapping[str, Any] = field(default_factory=dict)
    component_inputs: Mapping[str, Mapping[str, NameRule]] | None = None


@dataclass(frozen=True, kw_only=True)
class FamilySpec:
    """One family's entry.

    `label`: the category (`Modular Diffusers/<label>`) and the first part of display names;
    `class_labels`: readable names for its top-level blocks classes (`Flux Kontext`);
    `class_node_names`: the second part of the name of a class without named workflows (`Generate`);
    `words`: the family's own abbreviations in workflow and stage names, written out (`t2va`);
    `latent_format`: a class name in `comfy.latent_formats`, for previews;
    `preview_latents`: turns its in-loop latents into an image-shaped preview tensor;
    `mapping`: its socket mapping (extra name rules); `fps`: the frame rate of its VIDEO output when the
    state gives none; `proven`: what runs end to end in the tests on a tiny fixture ("" = schema-tested
    only; the README's family table shows it); `batched_guidance`: a guider's two passes run as one
    model call by default (proven on its fixture: tests/unit/adapters/test_batched_guidance.py);
    `lora_signs`: key fragments that tell a LoRA file made for this family (to name it when a LoRA fits
    no module of a bundle); `checkpoint_types`: the model types diffusers' `infer_diffusers_model_type`
    gives this family's single files (to refuse another family's checkpoint); `denoiser_file_prefix`: what
    diffusers' converter needs in front of the keys of an original-layout denoiser file, which ComfyUI's
    diffusion_models files of that model leave out (SDXL's `model.diffusion_model.`); `nodes`: overrides of single
    nodes, by (class, workflow or stage name); `output_type`: what its decoders are asked for, "np" (float
    arrays, ComfyUI's IMAGE as it is) unless a decoder of the family accepts nothing else ("pil": 8-bit images,
    which ComfyUI's IMAGE holds exactly; every decoder of the family then gives the same pixels).
    """

    label: str
    class_labels: Mapping[str, str] = field(default_factory=dict)
    class_node_names: Mapping[str, str] = field(default_factory=dict)
    words: Mapping[str, str] = field(default_factory=dict)
    latent_format: str | None = None
    preview_latents: Callable[[Any, Any], Any] | None = None  # (latents, block_state) -> [B, C, (F,) H, W]
    mapping: SocketMapping = DEFAULT_MAPPING
    fps: float = 24.0
    proven: str = ""
    batched_guidance: bool = False
    lora_signs: tuple[str, ...] = ()
    checkpoint_types: tuple[str, ...] = ()
    denoiser_file_prefix: str = ""
    nodes: Mapping[tuple[str, str | None], NodeOverride] = field(default_factory=dict)
    output_type: str = "np"

    @property
    def all_words(self) -> dict[str, str]:
        """The generic words with the family's own."""
        return {**WORDS, **self.words}
