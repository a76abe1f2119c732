"""What the server tests share: a server with the tiny models, reading its outputs, queueing from the
page the way the Run button does, and what a loop's websocket `progress` messages must show.

Progress: ComfyUI 0.3.75 sends every update. Newer ComfyUI throttles them (at least 100 ms and 0.5%
apart; the first, the last and any update with a preview always go out), so there the check accepts a
subset: first 1, last `steps`, strictly increasing. Both still catch a loop that reports nothing,
reports too few steps or counts past its total.
"""

from __future__ import annotations

import inspect
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import comfy.utils
import numpy as np
from comfy_harness import ComfyServer, comfyui_dir, make_base_directory
from PIL import Image
from tiny_loras import build_tiny_loras
from tiny_single_files import build_tiny_single_files

logger = logging.getLogger(__name__)


# In the checkpoints list: a LoRA, a VAE alone and a Flux transformer (refused by Load Checkpoint).
MISPLACED = {
    "checkpoints/tiny-sdxl-lora-kohya.safetensors": "loras/tiny-sdxl-lora-kohya.safetensors",
    "checkpoints/tiny-sdxl-vae.safetensors": "vae/tiny-sdxl-vae.safetensors",
    "checkpoints/tiny-flux-bfl.safetensors": "diffusion_models/tiny-flux-bfl.safetensors",
}


def prepare_base(base: Path, tiny_model: Path) -> Path:
    """A base directory holding this pack, every tiny model, the tiny LoRAs, the single-file fixtures and
    ComfyUI's example image (`tiny_model`, the SDXL folder, sits beside the others; the LoRAs and single
    files are built once beside them)."""
    make_base_directory(base)
    for model in tiny_model.parent.iterdir():
        if model.is_dir() and not model.name.startswith("."):
            (base / "models" / "diffusers" / model.name).symlink_to(model, target_is_directory=True)
    (base / "models" / "loras").mkdir(parents=True, exist_ok=True)
    for lora in build_tiny_loras(tiny_model.parent, tiny_model.parent / ".loras"):
        (base / "models" / "loras" / lora.name).symlink_to(lora)
    # The single-file fixtures (checkpoints/, diffusion_models/, ..., diffusers/tiny-sdxl-configs), built once,
    # and files a user might put in the wrong folder.
    files = build_tiny_single_files(tiny_model.parent, tiny_model.parent / ".single_files")
    for name, source in MISPLACED.items():
        files[name] = base / "models" / source
    for name, path in files.items():
        (base / "models" / name).parent.mkdir(parents=True, exist_ok=True)
        (base / "models" / name).symlink_to(path, target_is_directory=path.is_dir())
    (base / "input").mkdir(exist_ok=True)
    shutil.copy(comfyui_dir() / "input" / "example.png", base / "input" / "example.png")
    return base


def start_server(
    base: Path, tiny_model: Path, extra_args: list[str] | None = None, env: dict[str, str] | None = None
) -> ComfyServer:
    """A server on a base directory made by `prepare_base`."""
    prepare_base(base, tiny_model)
    # One torch thread per process: the server and the test process share 2 cores, and
    # oversubscribed OpenMP threads spin-wait (runs became 10-50x slower).
    # Batched guidance pinned off: the parity tests compare with plain diffusers' two passes, bit for bit
    # (test_batched_guidance_server.py runs the default).
    server_env = {"OMP_NUM_THREADS": "1", "MDIFF_BATCHED_GUIDANCE": "0", **(env or {})}
    comfy = ComfyServer(base, extra_args=extra_args, env=server_env).start()
    logger.info("ComfyUI answered after %.1f s", comfy.start_seconds)
    return comfy


def comfy_quantize(image: np.ndarray) -> np.ndarray:
    """What SaveImage does to a float image before writing the PNG."""
    return np.clip(255.0 * image, 0, 255).astype(np.uint8)


def saved_image(server, run, node_id: str) -> np.ndarray:
    """The first image a Save Image node of a finished run wrote, as RGB pixels."""
    assert run.status == "success", run.error() or run.history.get("status")
    image = run.output(node_id)["images"][0]
    path = server.base / "output" / image["subfolder"] / image["filename"]
    return np.asarray(Image.open(path).convert("RGB"))


def read_audio(path: Path) -> tuple[np.ndarray, int]:
    """The samples ([C, T], as the file stores them: int16 for the FLAC of core Save Audio, which hands
    PyAV float samples that its FLAC encoder takes as s16) and the sample rate of an audio file."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        channels = stream.codec_context.channels
        # Packed formats (s16) decode to [1, T * C], interleaved; planar ones to [C, T].
        chunks = [frame.to_ndarray() for frame in container.decode(stream)]
        samples = [chunk if chunk.shape[0] == channels else chunk.reshape(-1, channels).T for chunk in chunks]
        return np.concatenate(samples, axis=1), stream.codec_context.sample_rate


def saved_audio(server, run, node_id: str) -> tuple[np.ndarray, int]:
    """Every waveform a Save Audio node of a finished run wrote (a file per batch item) as the files hold
    them, [B, C, T], and their sample rate."""
    assert run.status == "success", run.error() or run.history.get("status")
    read = [
        read_audio(server.base / "output" / item["subfolder"] / item["filename"])
        for item in run.output(node_id)["audio"]
    ]
    (rate,) = {rate for _, rate in read}
    return np.stack([samples for samples, _ in read]), rate


def flac_quantize(waveform: np.ndarray) -> np.ndarray:
    """What core Save Audio's FLAC keeps of a float waveform: PyAV hands the float samples to the FLAC
    encoder as s16 (libswresample: rounded to nearest, clipped at full scale; checked sample for sample)."""
    return np.clip(np.rint(waveform.astype(np.float64) * 32768.0), -32768, 32767).astype(np.int16)


# Queues the graph with app.queuePrompt (what the Run button calls), observing the server's answer.
QUEUE_JS = """
(async () => {
  const api = app.api, original = api.queuePrompt;
  let answer = null, failure = null;
  api.queuePrompt = async function (...args) {
    try { return (answer = await original.apply(this, args)); }
    catch (error) { failure = error; throw error; }
  };
  try { await app.queuePrompt(0, 1); } finally { api.queuePrompt = original; }
  if (failure) return { error: String(failure), response: failure.response ?? null };
  return answer;
})()
"""


def wait_for_history(client, prompt_id: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entry = client.get(f"/api/history/{prompt_id}").get(prompt_id)
        if entry and entry.get("status", {}).get("completed") is not None:
            return entry
        time.sleep(0.05)
    raise AssertionError(f"prompt {prompt_id} queued from the page did not finish in {timeout} s")


# Newest ComfyUI's ProgressBar.update_absolute throttles by time; 0.3.75's does not look at the clock.
THROTTLED = "time" in inspect.getsource(comfy.utils.ProgressBar.update_absolute)


def assert_counts_every_step(messages: list[dict], steps: int) -> None:
    values = [message["value"] for message in messages]
    assert values, "the loop reported no progress"
    assert messages[-1]["max"] == steps, messages[-1]
    if THROTTLED:
        assert values[0] == 1 and values[-1] == steps, values
        assert all(a < b for a, b in zip(values, values[1:], strict=False)), values
    else:
        assert values == list(range(1, steps + 1))
