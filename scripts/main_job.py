"""The main job behind scripts/run.sh: ComfyUI with this pack, one shipped workflow run through
`POST /prompt`, its result printed, then the canvas left running for the user.

The ComfyUI server it starts is stopped on every way out: the workflow failing, an exception, Ctrl-C
(SIGINT), and SIGTERM or SIGHUP (a supervisor, `timeout`, a closed terminal, a container stop). A stop
signal ends the job with 128 + the signal's number, the shell's convention (130, 143, 129).
"""

from __future__ import annotations

import argparse
import atexit
import json
import logging
import signal
import sys
import time
from pathlib import Path

from comfy_harness import ComfyServer, comfyui_dir, load_api_workflow
from tiny_loras import build_tiny_loras, loras_named_by
from tiny_models import TINY_MODELS, models_named_by
from tiny_single_files import build_tiny_single_files, models_for, single_files_named_by

logger = logging.getLogger("main_job")

DEFAULT_WORKFLOW = "sdxl_text2image"
# The signals that stop the job (SIGHUP does not exist on Windows).
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class StopRequested(BaseException):
    """A stop signal arrived. A BaseException, like KeyboardInterrupt, so no `except Exception` on the way
    swallows it before the `finally` that stops ComfyUI."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_stop(signum: int, frame) -> None:
    handle_stop_signals(signal.SIG_IGN)  # once: a second signal must not cut the stop short
    raise StopRequested(signum)


def handle_stop_signals(handler=_raise_stop) -> None:
    """Python's default for SIGTERM and SIGHUP ends the process at once, skipping every `finally`, and the
    ComfyUI child would keep running and holding the port; raise instead (SIGINT too, for one code path)."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, handler)


def describe_outputs(server: ComfyServer, outputs: dict) -> list[str]:
    lines = []
    output_dir = (server.base or server.comfy_dir) / "output"
    for node_id, ui in outputs.items():
        for image in ui.get("images", []):
            lines.append(f"node {node_id}: image {output_dir / image.get('subfolder', '') / image['filename']}")
        for text in ui.get("text", []):
            lines.append(f"node {node_id}:\n  " + text.replace("\n", "\n  "))
    return lines


def run_job(server: ComfyServer, prompt: dict, workflow: str, serve: bool) -> int:
    logger.info("starting ComfyUI on %s (log: %s)", server.url, server.log_path)
    server.start()
    logger.info(
        "ComfyUI (pid %d) answered after %.1f s; queueing workflows/api/%s.json",
        server.process.pid,
        server.start_seconds,
        workflow,
    )
    started = time.monotonic()
    run = server.client().run(prompt)
    if run.status != "success":
        logger.error("the workflow failed: %s", json.dumps(run.error() or run.history.get("status"), indent=2))
        return 1
    logger.info("workflow finished in %.2f s", time.monotonic() - started)
    for line in describe_outputs(server, run.history["outputs"]):
        logger.info("%s", line)
    if not serve:
        return 0
    logger.info("the canvas is at %s (workflows are under Workflow > Browse Templates); Ctrl-C stops", server.url)
    server.process.wait()
    logger.error("ComfyUI exited by itself with %s (log: %s)", server.process.returncode, server.log_path)
    return 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workflow", default=DEFAULT_WORKFLOW, help="name of a file in workflows/api/ (no .json)")
    parser.add_argument("--port", type=int, default=8188)
    parser.add_argument("--exit", action="store_true", help="stop ComfyUI after the workflow instead of serving")
    parser.add_argument(
        "--base-directory",
        type=Path,
        help="a scratch ComfyUI base folder (custom_nodes/ with only this pack, models/, output/, an in-memory "
        "database) instead of ComfyUI's own folders",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="[run] %(message)s")
    handle_stop_signals()

    server = None
    try:
        prompt = load_api_workflow(args.workflow)
        server = ComfyServer(args.base_directory, port=args.port)
        atexit.register(server.stop)  # the last resort, should a signal land inside the `finally` below
        models_dir = (server.base or comfyui_dir()) / "models" / "diffusers"
        for name in models_named_by(prompt):  # the tiny models the workflow loads, built once
            logger.info("tiny model: %s", TINY_MODELS[name](models_dir / name))
        if loras_named_by(prompt):  # and the tiny LoRAs it applies
            build_tiny_loras(models_dir, models_dir.parent / "loras")
        if single_files_named_by(prompt):  # and the single files it loads (made from tiny models)
            for name in models_for(single_files_named_by(prompt)):
                TINY_MODELS[name](models_dir / name)
            build_tiny_single_files(models_dir, models_dir.parent)
        return run_job(server, prompt, args.workflow, serve=not args.exit)
    except (StopRequested, KeyboardInterrupt) as stop:
        signum = stop.signum if isinstance(stop, StopRequested) else signal.SIGINT
        logger.info("stopped by %s", signal.Signals(signum).name)
        return 128 + signum
    finally:
        handle_stop_signals(signal.SIG_IGN)
        if server is not None and server.process is not None and server.process.poll() is None:
            logger.info("stopping ComfyUI (pid %d)", server.process.pid)
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
