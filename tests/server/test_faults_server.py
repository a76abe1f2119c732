"""Faults around a real ComfyUI server: two copies of the pack in one ComfyUI, other custom nodes that fail
to import, a pack that fails to import, and scripts/run.sh stopped by a signal."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from comfy_harness import PACK_DIR_NAME, REPO, ComfyServer, free_port, load_api_workflow
from helpers import start_server

LOADED_MODELS = "/api/modular_diffusers/loaded_models"
IGNORED_COPY = re.compile(r"Modular Diffusers: ignoring the copy in (\S+), because the copy in (\S+) is already")


def add_broken_custom_node(base: Path, name: str = "broken_neighbour") -> None:
    """Another custom node that fails to import, as ComfyUI users often have one."""
    folder = base / "custom_nodes" / name
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("import no_such_module_for_this_test\n")


def test_two_copies_of_the_pack_and_a_broken_neighbour(tmp_path, tiny_model):
    """A clone and a zip download side by side: ComfyUI starts, one copy serves everything, the log names
    the copy that is ignored, and another custom node failing to import does not fail the harness."""
    base = tmp_path / "base"
    (base / "custom_nodes").mkdir(parents=True)
    (base / "custom_nodes" / f"{PACK_DIR_NAME}-main").symlink_to(REPO, target_is_directory=True)
    add_broken_custom_node(base)
    server = start_server(base, tiny_model)  # adds custom_nodes/comfyui-modular-diffusers
    try:
        client = server.client()
        assert "system" in client.get("/api/system_stats")
        log = server.log()
        assert "IMPORT FAILED): " + str(base / "custom_nodes" / "broken_neighbour") in log
        (ignored,) = IGNORED_COPY.findall(log)
        ignored_copy, loaded_copy = (Path(folder).name for folder in ignored)
        assert {ignored_copy, loaded_copy} == {PACK_DIR_NAME, f"{PACK_DIR_NAME}-main"}
        # Every node of the pack comes from the copy that serves the routes (ComfyUI would let the later
        # copy overwrite them, and its model classes would then not be the route's).
        modules = {node["python_module"] for node in client.get("/api/object_info").values()}
        assert {m for m in modules if PACK_DIR_NAME in m} == {f"custom_nodes.{loaded_copy}"}
        prompt = load_api_workflow("sdxl_text2image_one_node")
        prompt["2"]["inputs"]["num_inference_steps"] = 2
        assert client.run(prompt).status == "success"
        assert any(model["managed_by_pack"] for model in client.get(LOADED_MODELS)["models"])
    finally:
        server.stop()


def test_the_harness_still_fails_a_broken_pack(tmp_path):
    """A missing dependency (here `diffusers`, shadowed by a package that fails to import) breaks the pack
    but not ComfyUI: the harness must call that server broken, whatever else is in custom_nodes/."""
    shadow = tmp_path / "shadow" / "diffusers"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('diffusers is broken in this test')\n")
    base = tmp_path / "base"
    add_broken_custom_node(base)
    server = ComfyServer(base, env={"PYTHONPATH": str(shadow.parent), "OMP_NUM_THREADS": "1"})
    with pytest.raises(RuntimeError, match="the pack did not load cleanly") as failure:
        server.start()
    assert f"(IMPORT FAILED): {base / 'custom_nodes' / PACK_DIR_NAME}" in str(failure.value).split("--- log:")[0]
    assert "broken_neighbour" not in str(failure.value).split("--- log:")[0]
    assert server.process.poll() is not None  # stopped


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # a zombie nobody has reaped yet is gone too
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as ComfyUI's aiohttp does
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_run_sh_stops_its_comfyui_when_stopped_by_a_signal(tmp_path, signum):
    """A supervisor, `timeout` or a container stop (SIGTERM) and a closed terminal (SIGHUP) must not leave
    ComfyUI running and holding the port after scripts/run.sh is gone."""
    port = free_port()
    output = tmp_path / "run.out"
    command = [str(REPO / "scripts" / "run.sh"), "--port", str(port), "--workflow", "example_loop",
               "--base-directory", str(tmp_path / "base")]  # fmt: skip
    with open(output, "wb") as out:
        job = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"},
            start_new_session=True,
        )  # fmt: skip
    comfy_pid = None
    try:
        serving = wait_for(lambda: "the canvas is at" in output.read_text() or job.poll() is not None, 120)
        assert serving and job.poll() is None, output.read_text()
        comfy_pid = int(re.search(r"ComfyUI \(pid (\d+)\) answered", output.read_text()).group(1))
        assert not port_free(port)
        job.send_signal(signum)
        assert wait_for(lambda: process_gone(comfy_pid), 10), f"ComfyUI still runs:\n{output.read_text()}"
        assert wait_for(lambda: port_free(port), 5), f"port {port} still taken"
        assert job.wait(timeout=10) == 128 + signum, output.read_text()
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
        if comfy_pid is not None and not process_gone(comfy_pid):
            os.kill(comfy_pid, signal.SIGKILL)
