"""The canvas (UI-format) workflows in the real ComfyUI frontend, driven in headless Chromium.

For every API workflow `workflows/api/<name>.json` there must be a canvas workflow `workflows/<name>.json`
(scripts/make_ui_workflows.py makes them) that the frontend turns back into the same API prompt, and that runs
when queued from the page the way the Run button queues it. The MDiff_ShowState node must show its text on the
canvas (web/js/show_state.js). Needs chromium-headless-shell (scripts/install_browser.sh).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from browser import Browser, open_frontend
from comfy_harness import PACK_DIR_NAME, WORKFLOWS, load_api_workflow
from helpers import QUEUE_JS, saved_image, wait_for_history
from make_ui_workflows import api_names
from PIL import Image

NAMES = api_names()
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SHOW_STATE_TEXT = "batch_size: int = 12"  # what example_blocks_chain's MDiff_ShowState (node 4) reports

# Opens a canvas workflow the way the Templates browser does: fetched from the server's template route.
LOAD_UI_JS = """
(async () => {
  const response = await fetch(%(url)s);
  if (!response.ok) throw new Error("GET " + %(url)s + ": " + response.status);
  await app.loadGraphData(await response.json(), true, true, %(name)s);
  return app.graph.nodes.length;
})()
"""
PROMPT_JS = "app.graphToPrompt().then((p) => p.output)"
# The text widget of example_blocks_chain's MDiff_ShowState node (id 4), and whether it is on screen.
STATE_WIDGET_JS = """
(() => {
  const node = app.graph.getNodeById(4);
  const widget = node?.widgets?.find((w) => w.name === "state_text");
  if (!widget) return null;
  const box = widget.element.getBoundingClientRect();
  const visible = widget.element.isConnected && getComputedStyle(widget.element).display !== "none"
    && box.width > 100 && box.height > 40 && box.left >= 0 && box.top >= 0
    && box.right <= innerWidth && box.bottom <= innerHeight;
  return { value: widget.value, visible, width: box.width, height: box.height };
})()
"""


def template_url(name: str) -> str:
    return f"/api/workflow_templates/{PACK_DIR_NAME}/{name}.json"


# Widgets the frontend adds to a node to show its outputs once it ran (core Save Video's player). They are
# not inputs of the node, but graphToPrompt sends their value ("") with the node's inputs.
OUTPUT_PREVIEW_WIDGETS = ("video-preview",)


def nodes_of(prompt: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """A prompt without `_meta` and output-preview widgets: node id -> (class_type, inputs)."""
    return {
        node_id: (node["class_type"], {k: v for k, v in node["inputs"].items() if k not in OUTPUT_PREVIEW_WIDGETS})
        for node_id, node in prompt.items()
    }


@pytest.fixture(scope="module")
def page(server):
    browser = open_frontend(server.url)
    pid = browser.process.pid
    yield browser
    browser.close()
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # nothing of the browser's process group is left


def load_ui(page: Browser, name: str) -> None:
    count = page.evaluate(LOAD_UI_JS % {"url": json.dumps(template_url(name)), "name": json.dumps(name)})
    assert count == len(load_api_workflow(name)), f"{name}: the canvas shows {count} nodes"


def combo_choices(spec: list | None) -> list | None:
    """The options of a combo input in /object_info: `[[...], {...}]` (V1) or `["COMBO", {"options": [...]}]`."""
    if not spec:
        return None
    if isinstance(spec[0], list):
        return spec[0]
    if spec[0] == "COMBO" and len(spec) > 1:
        return spec[1].get("options")
    return None


def unavailable_choices(client, api: dict[str, Any]) -> list[str]:
    """Inputs whose value is not among the server's choices (an input image or a model folder it lacks)."""
    problems = []
    for node_id, node in api.items():
        info = client.object_info(node["class_type"])["input"]
        specs = {**info.get("required", {}), **info.get("optional", {})}
        for key, value in node["inputs"].items():
            choices = combo_choices(specs.get(key))
            if choices is not None and not isinstance(value, list) and value not in choices:
                problems.append(f"node {node_id} ({node['class_type']}) {key}={value!r} is not one of {choices[:10]}")
    return problems


def queue_from_page(page: Browser, client) -> dict[str, Any]:
    answer = page.evaluate(QUEUE_JS)
    assert answer and "prompt_id" in answer, f"the server refused the canvas prompt: {answer}"
    assert not answer.get("node_errors"), answer["node_errors"]
    return wait_for_history(client, answer["prompt_id"])


@pytest.mark.parametrize("name", NAMES)
def test_ui_workflow_exists(name):
    path = WORKFLOWS / f"{name}.json"
    assert path.is_file(), f"{path} is missing: run ./.venv/bin/python scripts/make_ui_workflows.py {name}"
    workflow = json.loads(path.read_text())
    assert {"nodes", "links", "version"} <= set(workflow), f"{path} is not a canvas (UI-format) workflow"


def test_ui_workflows_are_the_packs_templates(client):
    """Every canvas workflow has an API twin, and ComfyUI's Templates browser lists exactly these."""
    assert sorted(path.stem for path in WORKFLOWS.glob("*.json")) == NAMES
    assert sorted(client.get("/api/workflow_templates").get(PACK_DIR_NAME, [])) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_ui_workflow_gives_the_api_prompt(page, name):
    load_ui(page, name)
    assert nodes_of(page.evaluate(PROMPT_JS)) == nodes_of(load_api_workflow(name))


@pytest.mark.parametrize("name", NAMES)
def test_ui_workflow_runs_from_the_page(page, server, client, name):
    api = load_api_workflow(name)
    missing = unavailable_choices(client, api)
    if missing:
        pytest.fail(f"{name} needs files the test server does not have:\n" + "\n".join(missing))
    load_ui(page, name)
    entry = queue_from_page(page, client)
    status = entry["status"]
    assert status["status_str"] == "success", json.dumps(status["messages"])[:3000]
    assert nodes_of(entry["prompt"][2]) == nodes_of(api)  # what the server got from the page
    assert entry["prompt"][3]["extra_pnginfo"]["workflow"]["nodes"], "the canvas workflow is not embedded"
    # Seeds are "fixed": queuing did not change the graph, so the next run repeats this one.
    assert nodes_of(page.evaluate(PROMPT_JS)) == nodes_of(api)
    run = client.run(api)
    assert run.status == "success", run.error()
    assert entry["outputs"], "the canvas run produced no outputs"
    assert sorted(entry["outputs"]) == sorted(run.history["outputs"])


def test_show_state_text_on_the_canvas(page, client, tmp_path):
    load_ui(page, "example_blocks_chain")
    before = page.evaluate(STATE_WIDGET_JS)
    assert before is not None, "MDiff_ShowState has no text widget: web/js/show_state.js did not load"
    assert before["value"] == ""
    entry = queue_from_page(page, client)
    assert entry["status"]["status_str"] == "success"
    page.wait_for(f"{STATE_WIDGET_JS}?.value.includes({json.dumps(SHOW_STATE_TEXT)})", timeout=10)
    shown = page.wait_for(f"(() => {{ const shown = {STATE_WIDGET_JS}; return shown?.visible && shown; }})()")
    assert SHOW_STATE_TEXT in shown["value"]
    assert shown["value"] == entry["outputs"]["4"]["text"][0]
    page.screenshot(tmp_path / "show_state.png")
    # Reopened (fresh nodes, empty text), then given the stored outputs the way the frontend restores
    # them after a reload or a tab switch (app.nodeOutputs -> onNodeOutputsUpdated): the text is back.
    load_ui(page, "example_blocks_chain")
    assert page.evaluate(STATE_WIDGET_JS)["value"] == ""
    page.evaluate(f"app.nodeOutputs = {json.dumps(entry['outputs'])}")
    assert page.evaluate(STATE_WIDGET_JS)["value"] == entry["outputs"]["4"]["text"][0]


def test_screenshot_of_a_loaded_workflow(page, tmp_path):
    load_ui(page, "example_sequential_blocks")
    path = page.screenshot(tmp_path / "canvas.png")
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 20_000, f"a {len(data)}-byte screenshot is too small to show a canvas"


def test_a_canvas_file_saved_before_the_loaders_weight_dtypes_loads_with_their_defaults(page):
    """Load Diffusers Components gained two widgets at the end (weight_dtype, text_encoder_weight_dtype): a
    file saved with three widget values keeps them in place, and the new ones take their defaults."""
    saved = json.loads((FIXTURES / "old_canvas" / "sdxl_text2image_before_weight_dtypes.json").read_text())
    loader = next(node for node in saved["nodes"] if node["type"] == "MDiff_LoadComponents")
    assert loader["widgets_values"] == ["tiny-sdxl", "float32", False]
    page.evaluate(f"(async () => {{ await app.loadGraphData({json.dumps(saved)}, true, true, 'old'); }})()")
    assert nodes_of(page.evaluate(PROMPT_JS)) == nodes_of(load_api_workflow("sdxl_text2image"))


def test_a_canvas_file_saved_before_sd3s_third_prompts_loads_at_its_version(page, server, client):
    """SD3's text encoder gained prompt_3 and negative_prompt_3 between its widgets (the catalog snapshot's
    version 2): a file saved before loads that node as its version 1, every value where it was saved, and
    its run gives the current workflow's image."""
    saved = json.loads((FIXTURES / "old_canvas" / "sd3_text2image_before_prompt_3.json").read_text())
    encoder = next(node for node in saved["nodes"] if node["type"].endswith("_text_encoder"))
    assert encoder["widgets_values"] == ["a photo of a red fox in the snow", "", "blurry, low quality", "", 256]
    page.evaluate(f"(async () => {{ await app.loadGraphData({json.dumps(saved)}, true, true, 'old'); }})()")
    current = load_api_workflow("sd3_text2image")
    prompt = page.evaluate(PROMPT_JS)
    assert prompt["2"]["class_type"] == f"{current['2']['class_type']}_v1"
    assert prompt["2"]["inputs"] == {k: v for k, v in current["2"]["inputs"].items() if not k.endswith("_3")}
    entry = queue_from_page(page, client)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"]["messages"])[:3000]
    image = entry["outputs"]["5"]["images"][0]
    old = np.asarray(Image.open(server.base / "output" / image["subfolder"] / image["filename"]).convert("RGB"))
    assert np.array_equal(old, saved_image(server, client.run(current), "5"))
