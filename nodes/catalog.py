"""The catalog: every model family of `diffusers.modular_pipelines` as nodes, generated at start-up.

Families are the sub-packages of `diffusers.modular_pipelines`, found by listing the package, so a
family that a future diffusers adds appears without code changes. A family's top-level blocks
classes are the default blocks of the `ModularPipeline` classes it exports. Each top-level class
gives:

- one node per named workflow (`_workflow_map`, built with `get_workflow`), or one node for the
  whole class when it has none;
- one node per top-level stage (its direct sub-blocks: text encoder, VAE encoder, denoise, decode).

Node ids come from family, class and workflow/stage name (never positions):
`MDiff_<family>_<Class>_<name>`, or `MDiff_<family>_<Class>` for a whole class. They are part of
saved workflows and never change. Display names, categories and the few rules that cannot be
derived come from the per-family table in `families.py`; everything else is the generic adapter.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import logging
import pkgutil
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from diffusers import modular_pipelines
from diffusers.modular_pipelines import ModularPipeline, ModularPipelineBlocks

from ..adapters.factory import BlockNodeDefinition, block_description, make_block_node
from ..adapters.media import MediaDefaults
from ..adapters.sockets import NameRule
from .families import FAMILIES, FamilySpec, NodeOverride

logger = logging.getLogger(__name__)

ROOT_CATEGORY = "Modular Diffusers"
DECODED_OUTPUT = {"output_type": "np"}  # decoded images/frames stay float arrays: ComfyUI's IMAGE layout
GUIDANCE_TOOLTIP = (
    "Classifier-free guidance scale; 1 turns guidance (and the negative prompt) off. "
    "Set here, it applies to every step downstream."
)
GUIDANCE_OFF_TOOLTIP = " This model runs without guidance by default (1)."
# Words of workflow and stage names that read better written out.
WORDS = {
    "vae": "VAE",
    "img2img": "Image to Image",
    "t2va": "Text to Video+Audio",
    "fl2va": "First/Last Frame to Video+Audio",
    "ref2va": "Reference to Video+Audio",
    "flf2v": "First/Last Frame to Video",
    "controlnet": "ControlNet",
    "ip": "IP",
}


@dataclass(frozen=True)
class CatalogEntry:
    """One generated node: where its block comes from and how it is shown."""

    node_id: str
    family: str
    class_name: str
    kind: str  # "workflow", "stage" or "class"
    name: str | None
    display_name: str
    category: str
    override: NodeOverride | None = None


def diffusers_version() -> str:
    return importlib.metadata.version("diffusers")


def family_names() -> list[str]:
    """Every family folder of the installed diffusers' `modular_pipelines`, sorted."""
    return sorted(info.name for info in pkgutil.iter_modules(modular_pipelines.__path__) if info.ispkg)


def family_spec(family: str) -> FamilySpec:
    return FAMILIES.get(family) or FamilySpec(label=_words(family))


def top_level_classes(family: str) -> list[type[ModularPipelineBlocks]]:
    """The default blocks classes of the family's exported `ModularPipeline` classes."""
    module = importlib.import_module(f"{modular_pipelines.__name__}.{family}")
    classes: dict[str, type[ModularPipelineBlocks]] = {}
    for name in sorted(getattr(module, "__all__", None) or dir(module)):
        pipeline = getattr(module, name, None)
        if not (inspect.isclass(pipeline) and issubclass(pipeline, ModularPipeline)):
            continue
        blocks = getattr(module, getattr(pipeline, "default_blocks_name", None) or "", None)
        if inspect.isclass(blocks) and issubclass(blocks, ModularPipelineBlocks):
            classes[blocks.__name__] = blocks
    return [classes[name] for name in sorted(classes)]


def workflow_names(blocks: ModularPipelineBlocks) -> list[str]:
    return list(getattr(blocks, "_workflow_map", None) or {})


def class_label(spec: FamilySpec, class_name: str) -> str:
    if class_name in spec.class_labels:
        return spec.class_labels[class_name]
    return _words(re.sub(r"(Auto)?Blocks$", "", class_name))


def entries_for_family(family: str) -> Iterator[CatalogEntry]:
    spec = family_spec(family)
    category = f"{ROOT_CATEGORY}/{spec.label}"
    for blocks_class in top_level_classes(family):
        blocks = blocks_class()
        class_name = blocks_class.__name__
        label = class_label(spec, class_name)
        prefix = f"MDiff_{family}_{class_name}"
        workflows = workflow_names(blocks)
        named = [("workflow", name) for name in workflows] or [("class", None)]
        for kind, name in [*named, *(("stage", stage) for stage in blocks.sub_blocks)]:
            node_id = f"{prefix}_{name}" if name else prefix
            title = spec.class_node_names.get(class_name, "All Steps") if kind == "class" else _words(name)
            display_name = f"{label} › {title}"
            override = spec.nodes.get((class_name, name))
            if override is not None:
                node_id = override.node_id or node_id
                display_name = override.display_name or display_name
            yield CatalogEntry(node_id, family, class_name, kind, name, display_name, category, override)


def catalog_entries(families: list[str] | None = None) -> list[CatalogEntry]:
    entries: list[CatalogEntry] = []
    for family in family_names() if families is None else families:
        try:
            entries += list(entries_for_family(family))
        except Exception:  # one broken family must not hide the others
            logger.exception("Modular Diffusers: family %r could not be listed; its nodes are left out", family)
    return entries


def block_for(entry: CatalogEntry) -> ModularPipelineBlocks:
    module = importlib.import_module(f"{modular_pipelines.__name__}.{entry.family}")
    blocks = getattr(module, entry.class_name)()
    if entry.kind == "workflow":
        return blocks.get_workflow(entry.name)
    if entry.kind == "stage":
        return blocks.sub_blocks[entry.name]
    return blocks


def definition_for(entry: CatalogEntry, *, guider_stages: Mapping[str, str] | None = None) -> BlockNodeDefinition:
    """The node definition of a catalog entry: the generic socket policy, the family's table, and
    guidance-scale widgets on the nodes that configure a guider: a workflow or class node for all
    its guiders, a stage node for the guiders it is the first stage to use (`guider_stages`,
    guider component -> stage, see `guider_stages`)."""
    spec = family_spec(entry.family)
    block = block_for(entry)
    override = entry.override or NodeOverride()
    input_names = {param.name for param in block.inputs}
    fixed = {key: value for key, value in DECODED_OUTPUT.items() if key in input_names}
    if entry.kind == "stage":
        guiders = {guider for guider, stage in (guider_stages or {}).items() if stage == entry.name}
    else:
        guiders = None  # all of them
    component_inputs = _guidance_inputs(block, input_names, guiders)
    return BlockNodeDefinition(
        entry.node_id,
        block,
        entry.display_name,
        entry.category,
        description=override.description or _description(entry, block),
        mapping=spec.mapping,
        inputs=override.inputs,
        outputs=override.outputs,
        fixed_inputs={**fixed, **override.fixed_inputs},
        component_inputs=component_inputs if override.component_inputs is None else override.component_inputs,
        family=entry.family,
        media=MediaDefaults(fps=spec.fps),
    )


def guider_stages(family: str) -> dict[str, dict[str, str]]:
    """Class name -> {guider component -> the first stage whose block expects it}: that stage's node
    carries the guider's guidance-scale widget in a block-by-block graph (the guider then flows
    downstream in the state)."""
    stages: dict[str, dict[str, str]] = {}
    for blocks_class in top_level_classes(family):
        owners: dict[str, str] = {}
        for name, block in blocks_class().sub_blocks.items():
            for spec in block.expected_components:
                if spec.name.startswith("guider"):
                    owners.setdefault(spec.name, name)
        stages[blocks_class.__name__] = owners
    return stages


def _guidance_inputs(
    block: ModularPipelineBlocks, input_names: set[str], guiders: set[str] | None
) -> dict[str, dict[str, NameRule]]:
    """A guidance-scale widget per guider the block expects: `guidance_scale` for `guider`,
    `guidance_scale_2` for `guider_2` (a second model's guider, e.g. Wan 2.2's low-noise stage)."""
    widgets = {}
    for spec in block.expected_components:
        if not spec.name.startswith("guider") or (guiders is not None and spec.name not in guiders):
            continue
        config = dict(spec.config or {})
        scale = config.get("guidance_scale")
        name = "guidance_scale" + spec.name.removeprefix("guider")
        if not isinstance(scale, (int, float)) or name in input_names:
            continue
        tooltip = (
            GUIDANCE_TOOLTIP if spec.name == "guider" else GUIDANCE_TOOLTIP.replace("scale;", f"scale of {spec.name};")
        )
        if config.get("enabled") is False:  # shipped switched off: the default keeps it off
            scale, tooltip = 1.0, tooltip + GUIDANCE_OFF_TOOLTIP
        options = {"default": float(scale), "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01}
        rename = None if name == "guidance_scale" else name
        widgets[spec.name] = {"guidance_scale": NameRule("FLOAT", options, name=rename, tooltip=tooltip)}
    return widgets


def _description(entry: CatalogEntry, block: ModularPipelineBlocks) -> str:
    what = {
        "workflow": f"The whole '{entry.name}' workflow of {entry.class_name} in one node.",
        "stage": f"The '{entry.name}' step of {entry.class_name}; chain the state socket between steps.",
        "class": f"All steps of {entry.class_name} in one node.",
    }[entry.kind]
    detail = block_description(block)
    return f"{what}\n\n{detail}" if detail else what


def _words(name: str) -> str:
    """'text_encoder' -> 'Text Encoder', 'text2image' -> 'Text to Image', 'Wan22Vace' -> 'Wan22 Vace'."""
    if name in WORDS:
        return WORDS[name]
    name = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name)
    words = []
    for word in re.split(r"[_\s]+", name):
        if word in WORDS:
            words.append(WORDS[word])
            continue
        word = re.sub(r"(?<=[a-z])2(?=[a-z])", " to ", word)
        words.append(" ".join(part if part == "to" else part[:1].upper() + part[1:] for part in word.split(" ")))
    return " ".join(words)


def catalog_nodes(families: list[str] | None = None) -> list[type]:
    """Every catalog entry (of `families`, default all) as a node class, built live. A node that
    cannot be made is left out with a log line naming it and the reason; it never stops the others."""
    nodes = []
    stages: dict[str, dict[str, str]] = {}
    for entry in catalog_entries(families):
        try:
            if entry.family not in stages:
                stages[entry.family] = guider_stages(entry.family)
            definition = definition_for(entry, guider_stages=stages[entry.family].get(entry.class_name))
            nodes.append(make_block_node(definition))
        except Exception as error:
            logger.warning("Modular Diffusers: node %s left out: %s: %s", entry.node_id, type(error).__name__, error)
    return nodes
