"""The catalog generated from the installed diffusers: every family, stable ids, readable names, the
socket policy, the per-family table, and a family that a future diffusers adds."""

from __future__ import annotations

import collections
import importlib
import inspect
import pkgutil
import textwrap

import pytest
from comfyui_modular_diffusers.adapters.factory import BlockNodeDefinition, make_block_node
from comfyui_modular_diffusers.nodes import catalog
from comfyui_modular_diffusers.nodes.families import FAMILIES
from diffusers import modular_pipelines
from diffusers.modular_pipelines import LoopSequentialPipelineBlocks

RELEASED_IDS = {
    "MDiff_SDXLTextEncoder",
    "MDiff_SDXLVaeEncoder",
    "MDiff_SDXLDenoise",
    "MDiff_SDXLDecoder",
    "MDiff_SDXLText2Image",
    "MDiff_SDXLImage2Image",
}


@pytest.fixture(scope="module")
def entries():
    return catalog.catalog_entries()


@pytest.fixture(scope="module")
def nodes():
    return {node.GET_SCHEMA().node_id: node for node in catalog.catalog_nodes()}


def test_every_family_has_a_table_entry():
    missing = sorted(set(catalog.family_names()) - set(FAMILIES))
    assert not missing, (
        f"families without an entry in nodes/families.py (add one; they run with the generic policy): {missing}"
    )


def test_families_come_from_diffusers(entries):
    assert len(catalog.family_names()) >= 22
    assert {entry.family for entry in entries} == set(catalog.family_names())


def test_ids_are_unique_derived_and_keep_released_ones(entries):
    ids = [entry.node_id for entry in entries]
    assert len(ids) == len(set(ids))
    assert RELEASED_IDS <= set(ids)
    for entry in entries:
        if entry.node_id in RELEASED_IDS:
            continue
        expected = f"MDiff_{entry.family}_{entry.class_name}" + (f"_{entry.name}" if entry.name else "")
        assert entry.node_id == expected


def test_one_node_per_workflow_and_per_stage(entries):
    by_class = collections.defaultdict(list)
    for entry in entries:
        by_class[entry.class_name].append(entry)
    flux = {(e.kind, e.name) for e in by_class["FluxAutoBlocks"]}
    assert flux == {
        ("workflow", "text2image"),
        ("workflow", "image2image"),
        ("stage", "text_encoder"),
        ("stage", "vae_encoder"),
        ("stage", "denoise"),
        ("stage", "decode"),
    }
    wan = {(e.kind, e.name) for e in by_class["WanBlocks"]}  # no workflows: one node for the class
    assert ("class", None) in wan and ("stage", "denoise") in wan
    assert len(by_class) == 40


def test_readable_names_and_categories(entries):
    by_id = {entry.node_id: entry for entry in entries}
    assert by_id["MDiff_flux_FluxAutoBlocks_text_encoder"].display_name == "Flux › Text Encoder"
    assert by_id["MDiff_wan_Wan22Image2VideoBlocks"].display_name == "Wan 2.2 I2V › Image to Video"
    assert by_id["MDiff_flux_FluxKontextAutoBlocks_image_conditioned"].category == "Modular Diffusers/Flux"
    assert by_id["MDiff_z_image_ZImageAutoBlocks_text2image"].display_name == "Z-Image › Text to Image"
    for entry in entries:
        assert (
            entry.category.startswith("Modular Diffusers/")
            and "›" in entry.display_name
            or entry.node_id in RELEASED_IDS
        )


def test_every_entry_becomes_a_node_with_the_socket_policy(entries, nodes):
    assert set(nodes) == {entry.node_id for entry in entries}
    inputs = with_tooltip = 0
    for node_id, node in nodes.items():
        info = node.GET_NODE_INFO_V1()
        assert info["description"] and info["display_name"], node_id
        # Untyped values stay in the state; only a branch trigger that no branch declares keeps a socket.
        untyped = [s.name for s in node.PLAN.inputs if s.spec.io_type == "MDIFF_VALUE" and not s.trigger]
        assert not untyped, f"{node_id}: {untyped}"
        for section in ("required", "optional"):
            for name, spec in info["input"].get(section, {}).items():
                assert not name.endswith("_kwargs"), f"{node_id}.{name}: *_kwargs stay in the state"
                inputs += 1
                with_tooltip += bool(spec[1].get("tooltip"))
        assert "MDIFF_VALUE" not in info["output"], node_id
    assert with_tooltip / inputs >= 0.95, f"{with_tooltip}/{inputs} inputs have a tooltip"


def test_guidance_widget_on_the_first_guided_stage_and_the_workflows(nodes):
    def widgets(node_id):
        return nodes[node_id].GET_NODE_INFO_V1()["input"]["optional"]

    assert widgets("MDiff_z_image_ZImageAutoBlocks_text2image")["guidance_scale"][1]["default"] == 1.0  # shipped off
    assert widgets("MDiff_wan_WanBlocks")["guidance_scale"][1]["default"] == 5.0
    assert "guidance_scale" in widgets("MDiff_z_image_ZImageAutoBlocks_text_encoder")
    assert "guidance_scale" not in widgets("MDiff_z_image_ZImageAutoBlocks_denoise")
    masks = [n for n in nodes if "MASK" in str(nodes[n].GET_NODE_INFO_V1()["input"])]
    assert "MDiff_stable_diffusion_xl_StableDiffusionXLAutoBlocks_inpainting" in masks


def _loop_classes():
    for family in catalog.family_names():
        package = importlib.import_module(f"{modular_pipelines.__name__}.{family}")
        for info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            for name, cls in inspect.getmembers(module, inspect.isclass):
                if issubclass(cls, LoopSequentialPipelineBlocks) and cls.__module__ == module.__name__:
                    yield f"{family}.{name}", cls


def test_every_loop_block_becomes_a_node_or_is_an_empty_base():
    made, empty = [], []
    for name, cls in dict(_loop_classes()).items():
        block = cls()
        if not block.sub_blocks:
            with pytest.raises(ValueError, match="loop without steps"):
                make_block_node(BlockNodeDefinition("MDiff_Test", block, name, "test"))
            empty.append(name)
        else:
            make_block_node(BlockNodeDefinition("MDiff_Test", block, name, "test"))
            made.append(name)
    # diffusers 0.42.1: 16 of these failed before inputs were deduplicated by name.
    assert "cosmos.Cosmos3DistilledVisionDenoiseStep" in made and len(made) >= 59
    assert len(empty) >= 20


def test_a_new_family_appears_with_the_generic_policy(tmp_path, monkeypatch):
    folder = tmp_path / "newfam"
    folder.mkdir()
    (folder / "__init__.py").write_text(
        textwrap.dedent(
            """
            import torch
            from diffusers.modular_pipelines import (
                InputParam, ModularPipeline, ModularPipelineBlocks, OutputParam, SequentialPipelineBlocks,
            )

            class NewFamTextEncoderStep(ModularPipelineBlocks):
                @property
                def inputs(self):
                    return [InputParam("prompt"), InputParam("attention_kwargs"), InputParam("mystery")]

                @property
                def intermediate_outputs(self):
                    return [OutputParam("prompt_embeds", type_hint=torch.Tensor)]

                def __call__(self, components, state):
                    return components, state

            class NewFamBlocks(SequentialPipelineBlocks):
                block_classes = [NewFamTextEncoderStep]
                block_names = ["text_encoder"]

            class NewFamModularPipeline(ModularPipeline):
                default_blocks_name = "NewFamBlocks"

            __all__ = ["NewFamBlocks", "NewFamModularPipeline"]
            """
        )
    )
    monkeypatch.setattr(modular_pipelines, "__path__", [*modular_pipelines.__path__, str(tmp_path)])
    try:
        assert "newfam" in catalog.family_names() and "newfam" not in FAMILIES
        entries = [entry for entry in catalog.catalog_entries() if entry.family == "newfam"]
        assert {e.node_id for e in entries} == {"MDiff_newfam_NewFamBlocks", "MDiff_newfam_NewFamBlocks_text_encoder"}
        stage = next(e for e in entries if e.kind == "stage")
        assert (stage.display_name, stage.category) == ("New Fam › Text Encoder", "Modular Diffusers/Newfam")
        node = make_block_node(catalog.definition_for(stage))
        assert list(node.GET_NODE_INFO_V1()["input"]["optional"]) == ["state", "prompt"]
    finally:
        for name in [m for m in list(__import__("sys").modules) if ".newfam" in m]:
            del __import__("sys").modules[name]


def test_readme_family_table_is_current():
    import family_table

    assert family_table.updated_readme() == family_table.README.read_text(encoding="utf-8"), (
        "README.md's family table is out of date: run scripts/family_table.py"
    )
