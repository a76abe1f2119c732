"""Start a real ComfyUI server and talk to it: used by the tests and by the main job (scripts/run.sh).

`ComfyServer` starts ComfyUI as a subprocess on 127.0.0.1. For tests it gets a free port, `--cpu`,
a temporary base directory holding only this pack, and an in-memory database. `ComfyClient` makes
the same HTTP and websocket calls a user's script makes against `POST /prompt`.
"""

from __future__ import annotations

import json
import os
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
IMPORT_FAILURE_MARKERS = ("IMPORT FAILED", "Cannot import", "Traceback (most recent call last)")


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
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with {self.process.returncode}:\n{self.log()}")
            try:
                urllib.request.urlopen(self.url + "/system_stats", timeout=2).read()
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.25)
        else:
            self.stop()
            raise RuntimeError(f"ComfyUI did not answer within {timeout} s:\n{self.log()}")
        self.start_seconds = time.monotonic() - started
        self.check_pack_loaded()
        return self

    def check_pack_loaded(self) -> None:
        log = self.log()
        failures = [marker for marker in IMPORT_FAILURE_MARKERS if marker in log]
        if failures or PACK_DIR_NAME not in log:
            self.stop()
            raise RuntimeError(f"the pack did not load cleanly ({failures or 'not listed'}):\n{log}")

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
