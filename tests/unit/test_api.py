"""The public API for other packs (api.py), the helper they copy (docs/other-packs.md), and the hand-over
between two module copies of the pack's folder (the root __init__.py). The same in a real ComfyUI, in both
load orders: tests/test_second_pack_server.py."""

from __future__ import annotations

import asyncio
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import comfyui_modular_diffusers as pack
import pytest
from comfy_harness import REPO
from comfyui_modular_diffusers import api
from comfyui_modular_diffusers.adapters import factory

PACKAGE = "comfyui_modular_diffusers"
DOC = REPO / "docs" / "other-packs.md"
SECOND_PACK = REPO / "tests" / "fixtures" / "second_pack"
STABLE_NAMES = {
    "API_VERSION",
    "BlockNodeDefinition",
    "COMPONENTS",
    "ComponentsBundle",
    "ComponentsType",
    "DEFAULT_MAPPING",
    "MediaDefaults",
    "NameRule",
    "NodeLayout",
    "SHOW_COMMON",
    "SHOW_TYPED",
    "STATE",
    "SocketMapping",
    "StateType",
    "make_block_node",
    "versioned_nodes",
}


def load_package(monkeypatch, name: str, folder: Path) -> ModuleType:
    """Import `folder` as the package `name`, the way ComfyUI imports a custom node (and the helper)."""
    init = folder / "__init__.py"
    spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


def load_helper() -> ModuleType:
    spec = importlib.util.spec_from_file_location("second_pack_mdiff_api", SECOND_PACK / "mdiff_api.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_api_names_are_the_contract():
    assert set(api.__all__) == STABLE_NAMES  # removing a name breaks other packs
    for name in api.__all__:
        assert getattr(api, name) is not None
    assert api.API_VERSION == 2  # 2: socket_policy, SHOW_TYPED, SHOW_COMMON
    assert (api.STATE, api.COMPONENTS) == ("MDIFF_STATE", "MDIFF_COMPONENTS")
    assert api.BlockNodeDefinition is factory.BlockNodeDefinition and api.make_block_node is factory.make_block_node
    assert api.BlockNodeDefinition.__dataclass_fields__["socket_policy"].default == api.SHOW_TYPED
    assert pack.api is api
    assert sys.modules[PACKAGE] is pack


def test_a_second_load_of_the_same_folder_hands_over_to_the_published_module(monkeypatch):
    """ComfyUI loading the folder after another pack imported it: one copy serves everything."""
    second = load_package(monkeypatch, "/comfy/custom_nodes/comfyui-modular-diffusers", REPO)
    assert sys.modules[PACKAGE] is pack
    assert second._other_copy() is pack
    assert second.api is api
    extension = asyncio.run(second.comfy_entrypoint())
    assert type(extension).__module__ == f"{PACKAGE}.nodes"
    assert not [name for name in sys.modules if name.startswith(second.__name__ + ".")]


def test_a_copy_in_another_folder_does_not_hand_over(tmp_path, monkeypatch):
    """The pack installed twice: the other folder stays a copy of its own (nodes/__init__.py ignores it)."""
    link = tmp_path / "comfyui-modular-diffusers"
    link.symlink_to(REPO, target_is_directory=True)
    other = load_package(monkeypatch, "mdiff_test_other_copy", link)
    assert other._other_copy() is None
    assert sys.modules[PACKAGE] is pack


def test_the_docs_ship_the_fixture_helper_and_blocks():
    doc = DOC.read_text()
    assert (SECOND_PACK / "mdiff_api.py").read_text() in doc
    scale_latents = re.search(r"class ScaleLatents\b.*?return components, state\n", doc, re.S).group(0)
    assert scale_latents in (SECOND_PACK / "blocks.py").read_text()


def fake_folder_paths(*roots: Path) -> SimpleNamespace:
    paths = [str(root) for root in roots]
    return SimpleNamespace(get_folder_paths=lambda name: list(paths) if name == "custom_nodes" else [])


def test_the_helper_imports_the_pack_from_comfyuis_folders(tmp_path, monkeypatch):
    helper = load_helper()
    first, second = tmp_path / "first", tmp_path / "second"
    (first / "other-pack").mkdir(parents=True)
    (first / "other-pack" / "__init__.py").write_text("")
    (first / "other-pack" / "pyproject.toml").write_text('[project]\nname = "other-pack"\n')
    (first / "not-toml").mkdir()
    (first / "not-toml" / "pyproject.toml").write_text("[project\nname = 'comfyui-modular-diffusers'\n")
    (first / "comfyui-modular-diffusers.disabled").symlink_to(REPO, target_is_directory=True)
    second.mkdir()
    (second / "md-clone").symlink_to(REPO, target_is_directory=True)
    monkeypatch.setattr(helper, "PACKAGE", "mdiff_test_helper_copy")  # never replace the tests' own copy
    monkeypatch.setitem(sys.modules, "folder_paths", fake_folder_paths(first))
    with pytest.raises(ImportError, match="not installed"):
        helper._import_from_custom_nodes()
    assert "mdiff_test_helper_copy" not in sys.modules
    monkeypatch.setitem(sys.modules, "folder_paths", fake_folder_paths(first, tmp_path / "missing", second))
    try:
        module = helper._import_from_custom_nodes()
        assert sys.modules["mdiff_test_helper_copy"] is module
    finally:
        sys.modules.pop("mdiff_test_helper_copy", None)
    assert module.__file__ == str(second / "md-clone" / "__init__.py")  # the path ComfyUI loads it from
    assert module.__name__ == "mdiff_test_helper_copy"
    monkeypatch.setattr(helper, "tomllib", None)  # Python 3.10: the project name read line by line
    assert helper._is_modular_diffusers(str(second / "md-clone"))
    assert not helper._is_modular_diffusers(str(first / "other-pack"))


def test_the_helper_returns_the_published_api():
    helper = load_helper()
    assert helper.modular_diffusers_api() is api
    with pytest.raises(ImportError, match=f"API version {api.API_VERSION + 1} is needed"):
        helper.modular_diffusers_api(min_version=api.API_VERSION + 1)


def doc_code_block(doc: str, file_name: str) -> str:
    return re.search(rf"`{re.escape(file_name)}`:\n\n```python\n(.*?)```", doc, re.S).group(1)


def test_the_documented_example_pack_makes_its_node(tmp_path, monkeypatch):
    doc = DOC.read_text()
    folder = tmp_path / "my-latent-tools"
    folder.mkdir()
    (folder / "mdiff_api.py").write_text((SECOND_PACK / "mdiff_api.py").read_text())
    (folder / "blocks.py").write_text(doc_code_block(doc, "blocks.py"))
    (folder / "__init__.py").write_text(doc_code_block(doc, "__init__.py"))
    example = load_package(monkeypatch, "mdiff_test_example_pack", folder)
    extension = asyncio.run(example.comfy_entrypoint())
    (node,) = asyncio.run(extension.get_node_list())
    assert node.LAYOUT.node_id == "MyLatentTools_ScaleLatents"
    inputs = {socket.id: socket for socket in node.LAYOUT.inputs}
    assert inputs["latents"].io_type == "MDIFF_TENSOR"
    assert inputs["latent_scale"].options["max"] == 4.0
