"""Regenerate the canvas (UI-format) workflows `workflows/<name>.json` from the API-format `workflows/api/<name>.json`.

    ./.venv/bin/python scripts/make_ui_workflows.py [name ...]      (no names: every file in workflows/api/)

There is no server-side converter in ComfyUI, so this starts a real ComfyUI server with this pack and opens
its own frontend in headless Chromium (scripts/install_browser.sh installs it). `app.loadApiJson` builds the
graph the way dropping an API file onto the canvas does, keeping each node's id and `_meta.title`, and lays it
out left to right by topological depth (LiteGraph's `graph.arrange()`). The workflow written is
`app.graphToPrompt().workflow`, which is what the frontend's File > Export saves, without the saved view
(`extra.ds`), so that the frontend fits the view to the nodes when the file is opened. Seed widgets get
`control_after_generate: fixed`, so that running the canvas workflow repeats the API file run after run. Each
result is checked: the frontend must turn it back into the API prompt it came from.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from browser import Browser, open_frontend
from comfy_harness import WORKFLOWS, ComfyServer

API_DIR = WORKFLOWS / "api"

# Builds the graph from an API prompt in the page and returns {workflow, output} from graphToPrompt().
API_TO_UI_JS = """
(async () => {
  const api = %(api)s;
  const missing = Object.values(api).map((n) => n.class_type).filter((t) => !LiteGraph.registered_node_types[t]);
  if (missing.length) throw new Error("node types the frontend does not know: " + missing.join(", "));
  app.loadApiJson(api, %(filename)s);
  app.graph.arrange();
  // The API file fixes its seeds: "fixed" keeps them when the canvas workflow is queued (the default randomizes).
  for (const node of app.graph.nodes)
    for (const widget of node.widgets ?? []) if (widget.name === "control_after_generate") widget.value = "fixed";
  const { workflow, output } = await app.graphToPrompt();
  return { workflow, output };
})()
"""


def api_names() -> list[str]:
    return sorted(path.stem for path in API_DIR.glob("*.json"))


def ui_path(name: str) -> Path:
    return WORKFLOWS / f"{name}.json"


def prompt_differences(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """How two API prompts differ in node ids, class types, inputs and titles."""
    differences = []
    if set(expected) != set(actual):
        differences.append(f"node ids: expected {sorted(expected)}, got {sorted(actual)}")
    for node_id in sorted(set(expected) & set(actual)):
        for key in ("class_type", "inputs"):
            want, got = expected[node_id].get(key), actual[node_id].get(key)
            if want != got:
                differences.append(f"node {node_id} {key}: expected {want!r}, got {got!r}")
        want, got = expected[node_id].get("_meta", {}).get("title"), actual[node_id].get("_meta", {}).get("title")
        if want is not None and want != got:
            differences.append(f"node {node_id} title: expected {want!r}, got {got!r}")
    return differences


def api_to_ui(browser: Browser, name: str, api: dict[str, Any]) -> dict[str, Any]:
    """The UI-format workflow for an API prompt, made by the frontend."""
    result = browser.evaluate(API_TO_UI_JS % {"api": json.dumps(api), "filename": json.dumps(f"{name}.json")})
    differences = prompt_differences(api, result["output"])
    if differences:
        problems = "\n".join(differences)
        raise RuntimeError(f"{name}: the frontend's graph does not give back the API prompt:\n{problems}")
    workflow = result["workflow"]
    workflow.get("extra", {}).pop("ds", None)  # no saved view: the frontend fits the view to the nodes on open
    return workflow


def write_json(path: Path, data: dict[str, Any]) -> bool:
    """Write `data` with indent=2; return whether the file changed."""
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if path.exists() and path.read_text() == text:
        return False
    path.write_text(text)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="names of files in workflows/api/ (no .json); default: all")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    names = args.names or api_names()
    unknown = [name for name in names if not (API_DIR / f"{name}.json").is_file()]
    if unknown:
        parser.error(f"no such API workflow: {', '.join(f'workflows/api/{name}.json' for name in unknown)}")
    if not names:
        print("no API workflows in workflows/api/")
        return 0

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="make-ui-workflows-") as base:
        server = ComfyServer(Path(base)).start()
        try:
            with open_frontend(server.url) as browser:
                for name in names:
                    api = json.loads((API_DIR / f"{name}.json").read_text())
                    changed = write_json(ui_path(name), api_to_ui(browser, name, api))
                    print(f"{'wrote' if changed else 'unchanged'}: {ui_path(name).relative_to(WORKFLOWS.parent)}")
        finally:
            server.stop()
    orphans = sorted(path.name for path in WORKFLOWS.glob("*.json") if path.stem not in api_names())
    if orphans:
        print(f"warning: UI workflows with no API workflow in workflows/api/: {', '.join(orphans)}", file=sys.stderr)
    print(f"done in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
