"""Guidance-scale widgets of the catalog's nodes: the nodes that configure a guider show its scale.

A workflow or class node shows a widget for every guider its block expects; in a block-by-block graph,
the first stage that expects a guider shows it (the guider then flows downstream in the state). The
widget has the guider's own default; a guider that a model ships switched off (Z-Image) defaults to 1
(off) and is switched on when the scale is set (`adapters.components.prepare_components`).
"""

from __future__ import annotations

from diffusers.modular_pipelines import ComponentSpec, ModularPipelineBlocks

from ..adapters.names import GUIDANCE_OPTIONS
from ..adapters.spec import NameRule

GUIDANCE_TOOLTIP = (
    "Classifier-free guidance scale; 1 turns guidance (and the negative prompt) off. "
    "Set here, it applies to every step downstream."
)
GUIDANCE_OFF_TOOLTIP = " This model runs without guidance by default (1)."


def guider_components(block: ModularPipelineBlocks) -> list[ComponentSpec]:
    """The guiders a block expects (`guider`, and `guider_2` of a second model)."""
    return [component for component in block.expected_components if component.name.startswith("guider")]


def guider_owners(blocks: ModularPipelineBlocks) -> dict[str, str]:
    """Guider component -> the first of `blocks`' stages that expects it."""
    owners: dict[str, str] = {}
    for name, block in blocks.sub_blocks.items():
        for guider in guider_components(block):
            owners.setdefault(guider.name, name)
    return owners


def guidance_inputs(
    block: ModularPipelineBlocks, input_names: set[str], guiders: set[str] | None
) -> dict[str, dict[str, NameRule]]:
    """A guidance-scale widget per guider the block expects: `guidance_scale` for `guider`,
    `guidance_scale_2` for `guider_2` (a second model's guider, e.g. Wan 2.2's low-noise stage)."""
    widgets = {}
    for guider in guider_components(block):
        if guiders is not None and guider.name not in guiders:
            continue
        config = dict(guider.config or {})
        scale = config.get("guidance_scale")
        name = "guidance_scale" + guider.name.removeprefix("guider")
        if not isinstance(scale, (int, float)) or name in input_names:
            continue
        tooltip = (
            GUIDANCE_TOOLTIP
            if guider.name == "guider"
            else GUIDANCE_TOOLTIP.replace("scale;", f"scale of {guider.name};")
        )
        if config.get("enabled") is False:  # shipped switched off: the default keeps it off
            scale, tooltip = 1.0, tooltip + GUIDANCE_OFF_TOOLTIP
        options = {**GUIDANCE_OPTIONS, "default": float(scale)}
        rename = None if name == "guidance_scale" else name
        widgets[guider.name] = {"guidance_scale": NameRule("FLOAT", options, name=rename, tooltip=tooltip)}
    return widgets
