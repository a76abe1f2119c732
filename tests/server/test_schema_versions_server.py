"""Old canvas workflows keep loading and give the same results after a node's schema changes
(adapters/versions.py, web/js/schema_versions.js), in the real frontend.

A second pack (tests/fixtures/versioned_pack) registers its nodes through this pack's adapter. Its
release 1 is installed, a canvas workflow is built and run in the page and saved. Then release 2 is
installed (a widget added in front of the others, one node renamed) and the saved file is loaded: no
missing node, every widget keeps its value, and the run gives the same result. Also: what the file would
load as without the version mechanism (values in the wrong widgets), new nodes carry the current
version, and API-format prompts from release 1 run on release 2.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from browser import open_frontend
from comfy_harness import ComfyServer, make_base_directory
from helpers import QUEUE_JS, wait_for_history

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FIXTURE = FIXTURES / "versioned_pack"
HELPER = FIXTURES / "second_pack" / "mdiff_api.py"  # docs/other-packs.md's helper

BUILD_JS = """
(() => {
  app.graph.clear();
  const ids = {};
  for (const [name, type, value, factor] of [["scale", "VersionedPack_Scale", 5, 3.0],
                                             ["renamed", "VersionedPack_OldName", 7, 0.5]]) {
    const node = LiteGraph.createNode(type);
    app.graph.add(node);
    node.widgets.find((w) => w.name === "value").value = value;
    node.widgets.find((w) => w.name === "factor").value = factor;
    const show = LiteGraph.createNode("MDiff_ShowState");
    app.graph.add(show);
    node.connect(0, show, 0);
    ids[name] = node.id;
    ids[name + "_show"] = show.id;
  }
  return { ids, workflow: app.graph.serialize() };
})()
"""
LOAD_JS = "(async () => { await app.loadGraphData(%s, true, true, 'saved'); return app.graph.nodes.length; })()"
NODES_JS = """
app.graph.nodes.map((n) => ({
  id: n.id, type: n.type, registered: n.type in LiteGraph.registered_node_types,
  widgets: Object.fromEntries((n.widgets ?? []).filter((w) => w.name !== "state_text").map((w) => [w.name, w.value])),
  version: n.properties?.mdiff_schema_version ?? null,
}))
"""
NEW_NODE_JS = """
(() => {
  const node = LiteGraph.createNode("VersionedPack_Scale");
  app.graph.add(node);
  return { id: node.id, version: node.properties?.mdiff_schema_version ?? null, serialized: node.serialize() };
})()
"""


def _server(base: Path, release: str) -> ComfyServer:
    return ComfyServer(base, env={"VERSIONED_PACK_RELEASE": release, "OMP_NUM_THREADS": "1"}).start()


def _run_in_page(page, client) -> dict[str, Any]:
    answer = page.evaluate(QUEUE_JS)
    assert answer and "prompt_id" in answer and not answer.get("node_errors"), answer
    entry = wait_for_history(client, answer["prompt_id"])
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"]["messages"])[:2000]
    return entry


def _result(entry: dict[str, Any], show_id: int) -> float:
    return entry["outputs"][str(show_id)]["state"][0]["result"]["value"]


def _nodes(page) -> dict[int, dict[str, Any]]:
    return {node["id"]: node for node in page.evaluate(NODES_JS)}


@pytest.fixture(scope="module")
def release_1(tmp_path_factory):
    """Release 1 installed: the canvas workflow built and run in the page, the file it saves, its results."""
    base = make_base_directory(tmp_path_factory.mktemp("versions"))
    pack = base / "custom_nodes" / "versioned_pack"
    shutil.copytree(FIXTURE, pack, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(HELPER, pack / "mdiff_api.py")  # a pack ships its own copy of the helper
    comfy = _server(base, "1")
    try:
        with open_frontend(comfy.url) as page:
            built = page.evaluate(BUILD_JS)
            entry = _run_in_page(page, comfy.client())
            prompt = page.evaluate("app.graphToPrompt().then((p) => p.output)")
    finally:
        comfy.stop()
    return base, built["ids"], built["workflow"], entry, prompt


@pytest.fixture(scope="module")
def release_2(release_1):
    base = release_1[0]
    comfy = _server(base, "2")
    page = open_frontend(comfy.url)
    yield comfy, page
    page.close()
    comfy.stop()


def test_release_1_saves_plain_widget_values(release_1):
    _, ids, workflow, entry, _ = release_1
    saved = {node["id"]: node for node in workflow["nodes"]}
    assert saved[ids["scale"]]["widgets_values"] == [5, 3.0]
    assert "mdiff_schema_version" not in saved[ids["scale"]].get("properties", {})  # no versions yet
    assert _result(entry, ids["scale_show"]) == 15.0 and _result(entry, ids["renamed_show"]) == 3.5


def test_old_canvas_file_loads_without_missing_nodes_or_shifted_values(release_1, release_2):
    _, ids, workflow, _, _ = release_1
    comfy, page = release_2
    assert page.evaluate(LOAD_JS % json.dumps(workflow)) == 4
    nodes = _nodes(page)
    assert all(node["registered"] for node in nodes.values()), nodes
    assert nodes[ids["scale"]]["type"] == "VersionedPack_Scale_v1"  # the shape it was saved with
    assert nodes[ids["scale"]]["widgets"] == {"value": 5, "factor": 3.0}
    assert nodes[ids["renamed"]]["type"] == "VersionedPack_OldName"  # the old id stays loadable
    assert nodes[ids["renamed"]]["widgets"] == {"value": 7, "factor": 0.5}
    info = comfy.client().get("/api/object_info/VersionedPack_Scale_v1")["VersionedPack_Scale_v1"]
    assert info["deprecated"] is True  # hidden from the node search, kept for saved files


def test_old_canvas_file_runs_to_the_same_result(release_1, release_2):
    _, ids, workflow, before, _ = release_1
    comfy, page = release_2
    page.evaluate(LOAD_JS % json.dumps(workflow))
    after = _run_in_page(page, comfy.client())
    assert _result(after, ids["scale_show"]) == _result(before, ids["scale_show"]) == 15.0
    assert _result(after, ids["renamed_show"]) == _result(before, ids["renamed_show"]) == 3.5


def test_without_the_version_mechanism_values_would_shift(release_1, release_2):
    """The failure the mechanism prevents: the same file claiming the current version loads its
    positional values into the new widget order."""
    _, ids, workflow, _, _ = release_1
    _, page = release_2
    claimed = copy.deepcopy(workflow)
    node = next(node for node in claimed["nodes"] if node["id"] == ids["scale"])
    node.setdefault("properties", {})["mdiff_schema_version"] = 2
    page.evaluate(LOAD_JS % json.dumps(claimed))
    shifted = _nodes(page)[ids["scale"]]
    assert shifted["type"] == "VersionedPack_Scale"
    assert shifted["widgets"] == {"offset": 5, "value": 3, "factor": 2.0}


def test_new_nodes_carry_the_current_version_and_reload_as_they_are(release_2):
    _, page = release_2
    page.evaluate("app.graph.clear()")
    created = page.evaluate(NEW_NODE_JS)
    assert created["version"] == 2 and created["serialized"]["properties"]["mdiff_schema_version"] == 2
    workflow = page.evaluate("app.graph.serialize()")
    page.evaluate(LOAD_JS % json.dumps(workflow))
    node = _nodes(page)[created["id"]]
    assert node["type"] == "VersionedPack_Scale" and node["version"] == 2
    assert node["widgets"] == {"offset": 0.0, "value": 1, "factor": 2.0}


def test_release_1_api_prompts_run_on_release_2(release_1, release_2):
    """API-format prompts name their inputs: release 1's prompt runs as it is (new inputs take their
    defaults; the renamed node's old id still exists)."""
    _, ids, _, before, prompt = release_1
    comfy, _ = release_2
    assert prompt[str(ids["scale"])]["class_type"] == "VersionedPack_Scale"
    run = comfy.client().run(prompt)
    assert run.status == "success", run.error()
    assert run.output(str(ids["scale_show"]))["state"][0]["result"]["value"] == 15.0
    assert run.output(str(ids["renamed_show"]))["state"][0]["result"]["value"] == 3.5
