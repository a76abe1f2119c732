"""Start a real ComfyUI server and talk to it: used by the tests and by the main job (scripts/run.sh).

`ComfyServer` starts ComfyUI as a subprocess on 127.0.0.1. For tests it gets a free port, `--cpu`,
a temporary base directory holding only this pack, and an in-memory database. `ComfyClient` makes
the same HTTP and websocket calls a user's script makes against `POST /prompt`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import websocket

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / "workflows"
PACK_DIR_NAME = "comfyui-modular-diffusers"
TINY_MODEL = "tiny-sdxl"  # the default model the shipped SDXL workflows name
logger = logging.getLogger("comfy_harness")

# ComfyUI's start-up summary, one line per custom node: "   0.4 seconds (IMPORT FAILED): /x/custom_nodes/pack"
# (searched, not matched, so a log format with a time or level in front still parses).
IMPORT_TIME_LINE = re.compile(r"\d+(?:\.\d+)? seconds( \(IMPORT FAILED\))?: (.+?)\s*$")
CANNOT_IMPORT_LINE = re.compile(r"Cannot import (.+?) module for custom nodes: ")
TRACEBACK_START = "Traceback (most recent call last):"
TRACEBACK_FRAME = re.compile(r'^\s+File "([^"]+)", line \d+')


def comfyui_dir() -> Path:
    """ComfyUI's checkout: $COMFYUI_DIR, else what scripts/provision.sh recorded."""
    if os.environ.get("COMFYUI_DIR"):
        return Path(os.environ["COMFYUI_DIR"])
    env_file = REPO / ".comfyui.env"
    if env_file.exists():
        for line in env_file.read_text().splitlines():
            if line.startswith("COMFYUI_DIR="):
                return Path(line.split("=", 1)[1].strip("'\""))
    raise RuntimeError("ComfyUI not found: run scripts/provision.sh or set COMFYUI_DIR")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _same_folder(a: str, b: str | Path) -> bool:
    """Whether two paths name the same entry of a folder (the parent resolved, the entry itself not:
    two links to one checkout are two different custom nodes)."""

    def canonical(path: str | Path) -> tuple[str, str]:
        path = os.path.normpath(str(path))
        return os.path.realpath(os.path.dirname(path)), os.path.basename(path)

    return canonical(a) == canonical(b)


def _tracebacks(lines: list[str]) -> list[list[str]]:
    """Each traceback in a log: its header, its frames and its exception line (chained parts apart)."""
    blocks, index = [], 0
    while index < len(lines):
        if TRACEBACK_START not in lines[index]:
            index += 1
            continue
        block = [lines[index]]
        index += 1
        while index < len(lines) and lines[index].startswith((" ", "\t")):
            block.append(lines[index])
            index += 1
        if index < len(lines):
            block.append(lines[index])  # the exception line
            index += 1
        blocks.append(block)
    return blocks


def pack_load_problems(log: str, pack_folder: str | Path, source_root: str | Path | None = REPO) -> list[str]:
    """What ComfyUI's start-up log says went wrong with this pack; empty when it loaded cleanly.

    Only the pack's own lines count: its line in ComfyUI's "Import times for custom nodes" summary (missing
    or marked IMPORT FAILED), ComfyUI's "Cannot import <folder>" for it, and tracebacks that run through
    its files (under `pack_folder`, the path ComfyUI loads it from, or under `source_root`, the checkout
    the link points to, minus its hidden folders such as .venv/ and .comfyui/). Another custom node's or
    ComfyUI's own import failures are not the pack's.
    """
    folder = os.path.normpath(str(pack_folder))
    roots = {folder, os.path.join(os.path.realpath(os.path.dirname(folder)), os.path.basename(folder))}
    source = os.path.realpath(source_root) if source_root is not None else None

    def in_pack(file: str) -> bool:
        if any(file.startswith(root + os.sep) for root in roots):
            return True
        if source is None or not file.startswith(source + os.sep):
            return False
        return not os.path.relpath(file, source).startswith(".")

    lines = log.splitlines()
    problems, listed = [], False
    for line in lines:
        if match := IMPORT_TIME_LINE.search(line):
            if _same_folder(match.group(2), pack_folder):
                listed = True
                if match.group(1):
                    problems.append(line.strip())
        elif (match := CANNOT_IMPORT_LINE.search(line)) and _same_folder(match.group(1), pack_folder):
            problems.append(line.strip())
    for block in _tracebacks(lines):
        if any((frame := TRACEBACK_FRAME.match(line)) and in_pack(frame.group(1)) for line in block):
            problems.append("\n".join(block))
    if not listed:
        problems.append(f"{pack_folder} is not in ComfyUI's list of imported custom nodes")
    return problems


def make_base_directory(base: Path) -> Path:
    """A ComfyUI base directory whose custom_nodes/ holds only this pack."""
    (base / "custom_nodes").mkdir(parents=True, exist_ok=True)
    (base / "models" / "diffusers").mkdir(parents=True, exist_ok=True)
    link = base / "custom_nodes" / PACK_DIR_NAME
    if not link.exists():
        link.symlink_to(REPO, target_is_directory=True)
    return base


class ComfyServer:
    """`base=None` runs ComfyUI on its own folders (models/, output/, custom_nodes/), as a user would;
    a `base` folder isolates everything for a test."""

    def __init__(
        self,
        base: Path | None,
        extra_args: list[str] | None = None,
        port: int | None = None,
        log_path: Path | None = None,
        env: dict[str, str] | None = None,
    ):
        self.base = make_base_directory(base) if base is not None else None
        self.comfy_dir = comfyui_dir()
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path or (base / "comfyui.log" if base is not None else REPO / ".comfyui" / "comfyui.log")
        self.extra_args = list(extra_args or [])
        self.env = dict(env or {})
        self.process: subprocess.Popen | None = None
        self.start_seconds: float | None = None

    def start(self, timeout: float = 120.0) -> ComfyServer:
        command = [sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
                   "--disable-auto-launch", "--disable-api-nodes"]  # fmt: skip
        if self.base is not None:
            command += ["--base-directory", str(self.base), "--database-url", "sqlite:///:memory:"]
        command += self.extra_args
        started = time.monotonic()
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", **self.env}
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(command, cwd=self.comfy_dir, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            self._wait_until_it_answers(started, timeout)
        except BaseException:  # a timeout, Ctrl-C or a stop signal while waiting: never leave it running
            self.stop()
            raise
        self.start_seconds = time.monotonic() - started
        self.check_pack_loaded()
        return self

    def _wait_until_it_answers(self, started: float, timeout: float) -> None:
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with {self.process.returncode}:\n{self.log()}")
            try:
                urllib.request.urlopen(self.url + "/system_stats", timeout=2).read()
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.25)
        raise RuntimeError(f"ComfyUI did not answer within {timeout} s:\n{self.log()}")

    @property
    def pack_folder(self) -> Path:
        """Where ComfyUI finds this pack: custom_nodes/ of the base directory or of ComfyUI itself."""
        return (self.base or self.comfy_dir) / "custom_nodes" / PACK_DIR_NAME

    def check_pack_loaded(self) -> None:
        """Fail (and stop the server) when the start-up log shows that this pack did not load cleanly;
        failures of other custom nodes are only logged."""
        log = self.log()
        problems = pack_load_problems(log, self.pack_folder)
        if problems:
            self.stop()
            raise RuntimeError("the pack did not load cleanly:\n" + "\n".join(problems) + f"\n--- log:\n{log}")
        others = [line.strip() for line in log.splitlines() if "IMPORT FAILED" in line]
        if others:
            logger.warning("import failures of other modules (not this pack): %s", "; ".join(others))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def client(self) -> ComfyClient:
        return ComfyClient(self.url)


@dataclass
class Run:
    """One queued prompt, followed to its end over the websocket."""

    prompt_id: str
    messages: list[dict[str, Any]]
    history: dict[str, Any]
    previews: int = 0

    @property
    def status(self) -> str:
        return self.history.get("status", {}).get("status_str", "")

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [m["data"] for m in self.messages if m["type"] == kind]

    @property
    def cached_nodes(self) -> set[str]:
        return {node for data in self.events("execution_cached") for node in data["nodes"]}

    def output(self, node_id: str) -> dict[str, Any]:
        return self.history["outputs"][node_id]

    def error(self) -> dict[str, Any] | None:
        errors = self.events("execution_error")
        return errors[0] if errors else None


class PromptRejected(Exception):
    def __init__(self, status: int, body: dict[str, Any]):
        super().__init__(f"HTTP {status}: {json.dumps(body)[:2000]}")
        self.status = status
        self.body = body


def load_api_workflow(name: str) -> dict[str, Any]:
    return json.loads((WORKFLOWS / "api" / f"{name}.json").read_text())


class ComfyClient:
    def __init__(self, url: str):
        self.url = url
        self.client_id = str(uuid.uuid4())

    def request(self, method: str, path: str, body: Any = None, timeout: float = 30) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                raw = response.read()
                status = response.status
        except urllib.error.HTTPError as error:
            raw, status = error.read(), error.code
        try:
            return status, json.loads(raw) if raw else None
        except json.JSONDecodeError:
            return status, raw.decode(errors="replace")

    def get(self, path: str) -> Any:
        status, body = self.request("GET", path)
        assert status == 200, f"GET {path}: {status} {body}"
        return body

    def object_info(self, node_class: str) -> dict[str, Any]:
        return self.get(f"/api/object_info/{node_class}")[node_class]

    def submit(self, prompt: dict[str, Any], **extra: Any) -> str:
        status, body = self.request("POST", "/api/prompt", {"prompt": prompt, "client_id": self.client_id, **extra})
        if status != 200:
            raise PromptRejected(status, body)
        return body["prompt_id"]

    def run(self, prompt: dict[str, Any], timeout: float = 300, on_message=None, **extra: Any) -> Run:
        """Queue `prompt` and collect its websocket messages until the prompt is done."""
        ws = websocket.create_connection(
            f"ws://127.0.0.1:{self.url.rsplit(':', 1)[1]}/ws?clientId={self.client_id}", timeout=timeout
        )
        try:
            prompt_id = self.submit(prompt, **extra)
            messages: list[dict[str, Any]] = []
            previews = 0
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                raw = ws.recv()
                if isinstance(raw, bytes):
                    previews += 1
                    continue
                message = json.loads(raw)
                data = message.get("data", {})
                if data.get("prompt_id") not in (None, prompt_id):
                    continue
                messages.append(message)
                if on_message is not None:
                    on_message(message, prompt_id)
                if message["type"] == "executing" and data.get("node") is None and data.get("prompt_id") == prompt_id:
                    break
            else:
                raise TimeoutError(f"prompt {prompt_id} did not finish in {timeout} s")
        finally:
            ws.close()
        history = self.get(f"/api/history/{prompt_id}").get(prompt_id, {})
        return Run(prompt_id, messages, history, previews)

    def interrupt(self, prompt_id: str | None = None) -> None:
        self.request("POST", "/api/interrupt", {"prompt_id": prompt_id} if prompt_id else {})

    def free(self) -> None:
        self.request("POST", "/api/free", {"unload_models": True, "free_memory": True})
