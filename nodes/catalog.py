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
from ..adapters.sockets import SHOW_COMMON
from .families import family_spec
from .family_spec import FamilySpec, NodeOverride
from .guidance import guidance_inputs, guider_owners
from .naming import ROOT_CATEGORY, readable

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
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
    return readable(re.sub(r"(Auto)?Blocks$", "", class_name), spec.all_words)


def entries_for_family(family: str) -> Iterator[CatalogEntry]:
    spec = family_spec(family)
    category = f"{ROOT_CATEGORY}/{spec.label}"
    words = spec.all_words
    for blocks_class in top_level_classes(family):
        blocks = blocks_class()
        class_name = blocks_class.__name__
        label = class_label(spec, class_name)
        prefix = f"MDiff_{family}_{class_name}"
        workflows = workflow_names(blocks)
        named = [("workflow", name) for name in workflows] or [("class", None)]
        for kind, name in [*named, *(("stage", stage) for stage in blocks.sub_blocks)]:
            node_id = f"{prefix}_{name}" if name else prefix
            title = spec.class_node_names.get(class_name, "All Steps") if kind == "class" else readable(name, words)
            display_name = f"{label} › {title}"
            override = spec.nodes.get((class_name, name))
            if override is not None:
                node_id = override.node_id or node_id
                display_name = override.display_name or display_name
            yield CatalogEntry(
                node_id=node_id,
                family=family,
                class_name=class_name,
                kind=kind,
                name=name,
                display_name=display_name,
                category=category,
                override=override,
            )


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
    # decoded images/frames as the family's decoders give them to ComfyUI's IMAGE (float arrays by default)
    fixed = {"output_type": spec.output_type} if "output_type" in input_names else {}
    if entry.kind == "stage":
        guiders = {guider for guider, stage in (guider_stages or {}).items() if stage == entry.name}
    else:
        guiders = None  # all of them
    component_inputs = guidance_inputs(block, input_names, guiders)
    return BlockNodeDefinition(
        node_id=entry.node_id,
        block=block,
        display_name=entry.display_name,
        category=entry.category,
        description=override.description or _description(entry, block),
        mapping=spec.mapping,
        inputs=override.inputs,
        outputs=override.outputs,
        fixed_inputs={**fixed, **override.fixed_inputs},
        component_inputs=component_inputs if override.component_inputs is None else override.component_inputs,
        family=entry.family,
        media=MediaDefaults(fps=spec.fps),
        socket_policy=SHOW_COMMON,
    )


def guider_stages(family: str) -> dict[str, dict[str, str]]:
    """Class name -> {guider component -> the first stage whose block expects it} (`guidance.guider_owners`)."""
    return {blocks_class.__name__: guider_owners(blocks_class()) for blocks_class in top_level_classes(family)}


def _description(entry: CatalogEntry, block: ModularPipelineBlocks) -> str:
    what = {
        "workflow": f"The whole '{entry.name}' workflow of {entry.class_name} in one node.",
        "stage": f"The '{entry.name}' step of {entry.class_name}; chain the state socket between steps.",
        "class": f"All steps of {entry.class_name} in one node.",
    }[entry.kind]
    detail = block_description(block)
    return f"{what}\n\n{detail}" if detail else what


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
