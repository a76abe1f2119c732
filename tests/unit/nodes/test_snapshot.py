"""The committed catalog snapshot: current for the installed diffusers and this code, used at
start-up where valid, and bypassed (nodes built live) for families or versions it does not cover."""

from __future__ import annotations

import copy
import difflib
import json

import pytest
from comfyui_modular_diffusers.nodes import history, snapshot
from diffusers.modular_pipelines import InputParam
from diffusers.modular_pipelines.z_image.decoders import ZImageVaeDecoderStep


@pytest.fixture(scope="module")
def live():
    return snapshot.live_snapshot()


def _by_id(data: dict) -> dict:
    nodes = {node["node_id"]: node for node in data["nodes"]}
    nodes.update({node.get("node_id") or node["name"]: node for node in data.get("hand_written", [])})
    return nodes


def _changes(old: dict, new: dict, limit: int = 80) -> str:
    before, after = _by_id(old), _by_id(new)
    lines = [f"removed: {sorted(set(before) - set(after))}", f"added: {sorted(set(after) - set(before))}"]
    for node_id in sorted(set(before) & set(after)):
        if before[node_id] != after[node_id]:
            lines += difflib.unified_diff(
                json.dumps(before[node_id], indent=1, sort_keys=True).splitlines(),
                json.dumps(after[node_id], indent=1, sort_keys=True).splitlines(),
                f"snapshot {node_id}",
                f"now {node_id}",
                lineterm="",
            )
    if old.get("diffusers") != new.get("diffusers"):
        lines.insert(0, f"diffusers: {old.get('diffusers')} -> {new.get('diffusers')}")
    return "\n".join(lines[:limit])


def test_snapshot_is_current(live):
    """Every node's schema is as committed (the diffusers version is checked separately below)."""
    committed = snapshot.read_snapshot()
    assert committed is not None, f"{snapshot.SNAPSHOT} is missing: run scripts/snapshot_catalog.py"
    now = json.loads(snapshot.snapshot_text(live))
    assert {**committed, "diffusers": None} == {**now, "diffusers": None}, (
        "a node's schema changed (saved workflows may depend on it). If intended, accept it with "
        "scripts/snapshot_catalog.py (old canvas workflows keep loading through nodes/schema_history.json). "
        "Changes:\n" + _changes(committed, live)
    )


def test_snapshot_was_written_for_the_installed_diffusers(live):
    committed = snapshot.read_snapshot()
    assert committed is not None and committed["diffusers"] == live["diffusers"], (
        f"the snapshot is for diffusers {committed and committed['diffusers']}, installed is {live['diffusers']}: "
        "start-up builds every node live (slower). Accept it with scripts/snapshot_catalog.py"
    )


def test_the_readable_diff_names_what_changed(live):
    changed = copy.deepcopy(live)
    node = next(n for n in changed["nodes"] if n["node_id"] == "MDiff_flux_FluxAutoBlocks_text2image")
    node["inputs"][3]["options"]["default"] = 7
    text = _changes(live, changed)
    assert "MDiff_flux_FluxAutoBlocks_text2image" in text and '"default": 7' in text


def test_hand_written_nodes_are_in_the_snapshot(live):
    names = set(_by_id(live)) - {node["node_id"] for node in live["nodes"]}
    assert {"MDiff_LoadComponents", "MDiff_ShowState", "MDiff_ExampleLoop"} <= names
    loader = _by_id(live)["MDiff_LoadComponents"]
    assert loader["input"]["required"]["model"][1]["options"] == "<depends on the machine>"
    assert loader["input"]["required"]["dtype"][1]["options"] == ["float32", "float16", "bfloat16"]
    changed = copy.deepcopy(live)
    changed["hand_written"][0]["input_order"]["required"].reverse()  # a reordered loader widget
    assert "snapshot MDiff_LoadComponents" in _changes(live, changed)


def test_a_changed_diffusers_block_fails_the_snapshot_and_is_accepted_as_a_version(monkeypatch):
    """As if a diffusers upgrade gave Z-Image's decoder a new input in front of the others."""
    decoder = ZImageVaeDecoderStep.inputs.fget
    monkeypatch.setattr(
        ZImageVaeDecoderStep,
        "inputs",
        property(lambda self: [InputParam("decode_scale", type_hint=float, default=1.0), *decoder(self)]),
    )
    committed = snapshot.read_snapshot()
    now = {
        **committed,
        "nodes": [
            *(node for node in committed["nodes"] if node["family"] != "z_image"),
            *(
                {"family": "z_image", **n.LAYOUT.to_json()}
                for n in snapshot.catalog.catalog_nodes(families=["z_image"])
            ),
        ],
    }
    text = _changes(committed, now)
    assert "snapshot MDiff_z_image_ZImageAutoBlocks_decode" in text and '"id": "decode_scale"' in text
    accepted, changed, gone = history.accept(
        snapshot.layouts(committed), snapshot.layouts(now), history.read_history()
    )
    assert "MDiff_z_image_ZImageAutoBlocks_decode" in changed and not gone
    old_decode = next(n for n in committed["nodes"] if n["node_id"] == "MDiff_z_image_ZImageAutoBlocks_decode")
    assert accepted["nodes"]["MDiff_z_image_ZImageAutoBlocks_decode"][-1]["inputs"] == old_decode["inputs"]


def test_startup_uses_the_snapshot_and_builds_the_rest_live(live, tmp_path):
    path = tmp_path / "snapshot.json"
    partial = copy.deepcopy(live)
    partial["families"].remove("z_image")  # as if a newer diffusers had added z_image
    partial["nodes"] = [node for node in partial["nodes"] if node["family"] != "z_image"]
    snapshot.write_snapshot(partial, path)
    nodes = {node.LAYOUT.node_id: node for node in snapshot.catalog_node_classes(path)}
    assert len(nodes) == len(live["nodes"])
    assert all(hasattr(node, "PLAN") == ("_z_image_" in node_id) for node_id, node in nodes.items())

    other = copy.deepcopy(live)
    other["diffusers"] = "0.0.1"
    snapshot.write_snapshot(other, path)
    assert all(hasattr(node, "PLAN") for node in snapshot.catalog_node_classes(path))


def test_deferred_schemas_equal_live_ones(live):
    deferred = {node.LAYOUT.node_id: node for node in snapshot.catalog_node_classes()}
    for node in snapshot.catalog.catalog_nodes(families=["flux", "wan"]):
        assert deferred[node.LAYOUT.node_id].GET_NODE_INFO_V1() == node.GET_NODE_INFO_V1()
