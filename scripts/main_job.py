"""The main job behind scripts/run.sh: ComfyUI with this pack, one shipped workflow run through
`POST /prompt`, its result printed, then the canvas left running for the user."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from comfy_harness import ComfyServer, comfyui_dir, load_api_workflow
from tiny_models import TINY_MODELS, models_named_by

logger = logging.getLogger("main_job")

DEFAULT_WORKFLOW = "sdxl_text2image"


def describe_outputs(server: ComfyServer, outputs: dict) -> list[str]:
    lines = []
    output_dir = (server.base or server.comfy_dir) / "output"
    for node_id, ui in outputs.items():
        for image in ui.get("images", []):
            lines.append(f"node {node_id}: image {output_dir / image.get('subfolder', '') / image['filename']}")
        for text in ui.get("text", []):
            lines.append(f"node {node_id}:\n  " + text.replace("\n", "\n  "))
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workflow", default=DEFAULT_WORKFLOW, help="name of a file in workflows/api/ (no .json)")
    parser.add_argument("--port", type=int, default=8188)
    parser.add_argument("--exit", action="store_true", help="stop ComfyUI after the workflow instead of serving")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="[run] %(message)s")

    prompt = load_api_workflow(args.workflow)
    for name in models_named_by(prompt):  # the tiny models the workflow loads, built once
        model = TINY_MODELS[name](comfyui_dir() / "models" / "diffusers" / name)
        logger.info("tiny model: %s", model)
    server = ComfyServer(None, port=args.port)
    logger.info("starting ComfyUI on %s (log: %s)", server.url, server.log_path)
    server.start()
    try:
        logger.info(
            "ComfyUI answered after %.1f s; queueing workflows/api/%s.json", server.start_seconds, args.workflow
        )
        started = time.monotonic()
        run = server.client().run(prompt)
        if run.status != "success":
            logger.error("the workflow failed: %s", json.dumps(run.error() or run.history.get("status"), indent=2))
            return 1
        logger.info("workflow finished in %.2f s", time.monotonic() - started)
        for line in describe_outputs(server, run.history["outputs"]):
            logger.info("%s", line)
        if args.exit:
            return 0
        logger.info("the canvas is at %s (workflows are under Workflow > Browse Templates); Ctrl-C stops", server.url)
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
