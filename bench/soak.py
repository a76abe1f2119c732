"""Soak: many prompts across the shipped workflows through one ComfyUI server, some of them interrupted.

    .venv/bin/python bench/soak.py [--prompts 200] [--seeds 3] [--interrupt-every 9] [--depth 3]

Builds the tiny models, starts a soak server and a fresh reference server (both `--cpu`, one torch
thread, default cache) and queues N prompts on the soak server, keeping `--depth` of them queued ahead:
first every shipped workflow (workflows/api/*.json) once, then each workflow twice in a row with
different seeds (the second time its loader and text encoder come from ComfyUI's cache), seeds drawn
from a small pool so that the same prompts recur. Every `--interrupt-every`-th prompt after the first
pass, when its workflow has a denoising loop, runs 1000 steps and is interrupted (POST /interrupt with
its prompt id) at its first progress message. The guide examples have no seed: the "seed" varies one of
their widgets instead.

Checks (exit status 1 when one fails):
- no unexpected failure: every prompt succeeds, except the interrupted ones, which must end interrupted
  (not in an error, not run to the end);
- every completed prompt's outputs equal those of the same prompt (workflow, seed) run once on the
  reference server, which never sees an interrupt: saved images pixel for pixel, Show State text, and
  saved videos by frame shape plus each frame's likeness to its PNG (ComfyUI's H.264 encoding is not
  bit-reproducible, see tests/server/test_cache_modes_server.py);
- the soak server's RSS (VmRSS in /proc/<pid>/status, read after each prompt) grows by less than
  `--max-growth` percent (5) from prompt 20 (`--rss-from`) to the last one.

Writes the per-prompt curve (workflow, seed, status, seconds, RSS) to bench/results/soak.json and prints
a summary. tests/server/test_soak_server.py runs a short version of the same.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import queue
import random
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import av  # noqa: E402
import numpy as np  # noqa: E402
import websocket  # noqa: E402
from comfy_harness import WORKFLOWS, ComfyServer, comfyui_dir, load_api_workflow, make_base_directory  # noqa: E402
from PIL import Image  # noqa: E402

Workflow = dict[str, dict[str, Any]]
RESULTS = REPO / "bench" / "results" / "soak.json"
SLOW_STEPS = 1000  # an interrupted prompt's steps: it cannot finish before the interrupt lands
# The guide examples have no seed: the soak's seed sets one of their widgets instead.
NO_SEED: dict[str, tuple[str, str, Callable[[int], int]]] = {
    "example_blocks_chain": ("1", "num_images_per_prompt", lambda seed: 1 + seed % 4),
    "example_loop": ("1", "x", lambda seed: seed % 1000),
    "example_loop_two_blocks": ("1", "x", lambda seed: seed % 1000),
    "example_sequential_blocks": ("2", "num_images_per_prompt", lambda seed: 1 + seed % 4),
}


def shipped_workflows() -> list[str]:
    return sorted(path.stem for path in (WORKFLOWS / "api").glob("*.json"))


def make_prompt(name: str, seed: int, slow: bool = False) -> Workflow:
    prompt = load_api_workflow(name)
    seeded = [node for node in prompt.values() if "seed" in node["inputs"]]
    for node in seeded:
        node["inputs"]["seed"] = seed
    if not seeded:
        node_id, key, value = NO_SEED[name]
        prompt[node_id]["inputs"][key] = value(seed)
    if slow:
        for node in prompt.values():
            if "num_inference_steps" in node["inputs"]:
                node["inputs"]["num_inference_steps"] = SLOW_STEPS
    return prompt


def interruptible(name: str) -> bool:
    return any("num_inference_steps" in node["inputs"] for node in load_api_workflow(name).values())


@dataclass(frozen=True)
class Item:
    index: int
    workflow: str
    seed: int
    interrupt: bool


def plan(prompts: int, workflows: list[str], seeds: list[int], interrupt_every: int, rng: random.Random) -> list[Item]:
    """Every workflow once, then each twice in a row with different seeds; every `interrupt_every`-th
    prompt after the first pass interrupted when its workflow has a denoising loop."""
    items = []
    for index in range(prompts):
        if index < len(workflows):
            items.append(Item(index, workflows[index], seeds[0], False))
            continue
        later = index - len(workflows)
        name = workflows[(later // 2) % len(workflows)]
        seed = rng.choice(seeds)
        if later % 2 and len(seeds) > 1 and seed == items[-1].seed:
            seed = rng.choice([s for s in seeds if s != seed])
        interrupt = interrupt_every > 0 and later % interrupt_every == interrupt_every - 1 and interruptible(name)
        items.append(Item(index, name, seed, interrupt))
    return items


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def _video_frames(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(container.streams.video[0])])


def _audio_samples(path: Path) -> tuple[bytes, int]:
    """An audio file's decoded samples (as bytes: compared by hash) and its sample rate."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        samples = b"".join(frame.to_ndarray().tobytes() for frame in container.decode(stream))
        return samples, stream.codec_context.sample_rate


def video_shows(video: np.ndarray, frames: np.ndarray) -> bool:
    """Whether a decoded H.264 video shows these PNG frames: same shape, each frame correlated with its
    PNG (~0.9; ~0 with another frame) and of the same mean colour."""
    if video.shape != frames.shape:
        return False
    for got, want in zip(video.astype(float), frames.astype(float), strict=True):
        if (
            np.corrcoef(got.ravel(), want.ravel())[0, 1] <= 0.75
            or np.abs(got.mean((0, 1)) - want.mean((0, 1))).max() >= 4
        ):
            return False
    return True


def outputs_of(base: Path, prompt: Workflow, history: dict[str, Any]) -> dict[str, Any]:
    """A prompt's outputs, comparable between runs: per Save Image node the sha256 of every image's
    pixels, per Save Audio node the sha256 and sample rate of every file's samples, per Show State node
    its text, per Save Video node its frames' shape and whether they show the frames saved by the Save
    Image node of the same decoder."""
    result: dict[str, Any] = {}
    pngs: dict[str, np.ndarray] = {}
    for node_id, output in history["outputs"].items():
        if "text" in output:
            result[f"{node_id} text"] = output["text"]
        files = [base / item["type"] / item["subfolder"] / item["filename"] for item in output.get("images", [])]
        if files and output.get("animated") != [True]:
            pngs[node_id] = np.stack([_pixels(path) for path in files])
            result[f"{node_id} images"] = [hashlib.sha256(image.tobytes()).hexdigest() for image in pngs[node_id]]
        for item in output.get("audio", []):
            samples, rate = _audio_samples(base / item["type"] / item["subfolder"] / item["filename"])
            result.setdefault(f"{node_id} audio", []).append([hashlib.sha256(samples).hexdigest(), rate])
    for node_id, node in prompt.items():
        if node["class_type"] == "SaveVideo" and node_id in history["outputs"]:
            (item,) = history["outputs"][node_id]["images"]
            video = _video_frames(base / item["type"] / item["subfolder"] / item["filename"])
            source = node["inputs"]["video"][0]
            siblings = [
                n for n, p in prompt.items() if p["class_type"] == "SaveImage" and p["inputs"]["images"][0] == source
            ]
            shows = bool(siblings) and all(video_shows(video, pngs[n]) for n in siblings if n in pngs)
            result[f"{node_id} video"] = {"shape": list(video.shape), "shows the saved frames": shows}
    return result


@dataclass
class Record:
    """One soak prompt, as written to soak.json."""

    index: int
    workflow: str
    seed: int
    interrupted: bool  # an interrupt was requested
    status: str = ""  # success | interrupted | error
    seconds: float = 0.0
    rss_mib: float = 0.0
    problem: str = ""  # why this prompt counts as a failure (empty: it does not)


@dataclass
class Report:
    records: list[Record] = field(default_factory=list)
    reference_runs: int = 0
    wall_seconds: float = 0.0

    @property
    def failures(self) -> list[Record]:
        return [record for record in self.records if record.problem]

    def rss_growth(self, start: int) -> float:
        """RSS growth in percent from prompt `start` (1-based) to the last one."""
        curve = [record.rss_mib for record in self.records]
        return 100.0 * (curve[-1] / curve[start - 1] - 1.0)


class Watcher(threading.Thread):
    """Reads the soak server's websocket: sends the interrupts as soon as an interrupted prompt reports
    progress, and reads the server's RSS the moment each prompt ends (while the main thread may be
    busy checking an earlier result, the server goes on with the queue)."""

    def __init__(self, server: ComfyServer, client_id: str, interrupt: set[str], timeout: float):
        super().__init__(daemon=True)
        self.server, self.interrupt, self.client = server, interrupt, server.client()
        self.ws = websocket.create_connection(f"ws://127.0.0.1:{server.port}/ws?clientId={client_id}", timeout=timeout)
        self.ended: queue.Queue[tuple[str, float] | BaseException] = queue.Queue()

    def run(self) -> None:
        interrupted: set[str] = set()
        try:
            while True:
                raw = self.ws.recv()
                if isinstance(raw, bytes):
                    continue
                message = json.loads(raw)
                data = message.get("data", {})
                prompt_id = data.get("prompt_id")
                if message["type"] == "progress" and prompt_id in self.interrupt and prompt_id not in interrupted:
                    interrupted.add(prompt_id)
                    self.client.interrupt(prompt_id)
                elif message["type"] == "executing" and data.get("node") is None and prompt_id:
                    self.ended.put((prompt_id, rss_mib(self.server.process.pid)))
        except websocket.WebSocketConnectionClosedException:
            pass
        except BaseException as error:  # handed to the main thread
            self.ended.put(error)


def soak(
    server: ComfyServer,
    reference: ComfyServer,
    items: list[Item],
    depth: int = 3,
    timeout: float = 300.0,
    log: Callable[[str], None] = print,
) -> Report:
    """Run `items` on `server`, `depth` queued ahead, and compare every completed result with the same
    prompt's result on `reference` (each distinct prompt run there once, when first needed)."""
    client, reference_client = server.client(), reference.client()
    expected: dict[tuple[str, int], dict[str, Any]] = {}
    report = Report()
    started = time.monotonic()
    to_interrupt: set[str] = set()
    watcher = Watcher(server, client.client_id, to_interrupt, timeout)
    watcher.start()
    try:
        waiting = list(items)
        in_flight: dict[str, tuple[Item, Workflow]] = {}

        def submit_next() -> None:
            while waiting and len(in_flight) < depth:
                item = waiting.pop(0)
                prompt = make_prompt(item.workflow, item.seed, slow=item.interrupt)
                prompt_id = str(uuid.uuid4())  # known before it is queued, so the watcher can interrupt it
                in_flight[prompt_id] = (item, prompt)
                if item.interrupt:
                    to_interrupt.add(prompt_id)
                client.submit(prompt, prompt_id=prompt_id)

        submit_next()
        while in_flight:
            ended = watcher.ended.get(timeout=timeout)
            if isinstance(ended, BaseException):
                raise ended
            prompt_id, rss = ended
            if prompt_id not in in_flight:
                continue
            item, prompt = in_flight.pop(prompt_id)
            submit_next()  # keep the queue full while this result is checked
            history = client.get(f"/api/history/{prompt_id}")[prompt_id]
            stamps = [data["timestamp"] for _, data in history["status"]["messages"]]
            seconds = (max(stamps) - min(stamps)) / 1000 if stamps else 0.0
            record = Record(item.index, item.workflow, item.seed, item.interrupt, seconds=seconds, rss_mib=rss)
            check(record, item, prompt, history, server, reference, reference_client, expected, report)
            report.records.append(record)
            if record.problem or (item.index + 1) % 20 == 0:
                log(f"prompt {item.index + 1}/{len(items)}: {record.workflow} seed {record.seed} {record.status}"
                    f" {record.seconds:.2f} s, RSS {record.rss_mib:.1f} MiB {record.problem}")  # fmt: skip
    finally:
        watcher.ws.close()
        watcher.join(timeout=10)
    report.records.sort(key=lambda record: record.index)
    report.wall_seconds = time.monotonic() - started
    return report


def check(
    record: Record,
    item: Item,
    prompt: Workflow,
    history: dict[str, Any],
    server: ComfyServer,
    reference: ComfyServer,
    reference_client,
    expected: dict[tuple[str, int], dict[str, Any]],
    report: Report,
) -> None:
    messages = [kind for kind, _ in history["status"]["messages"]]
    if "execution_interrupted" in messages:
        record.status = "interrupted"
    else:
        record.status = history["status"]["status_str"]
    if item.interrupt:
        if record.status != "interrupted":
            record.problem = f"asked to interrupt, it ended {record.status!r}"
        return
    if record.status != "success":
        errors = [data for kind, data in history["status"]["messages"] if kind == "execution_error"]
        record.problem = f"failed: {errors[0]['exception_message'][:300] if errors else history['status']}"
        return
    key = (item.workflow, item.seed)
    if key not in expected:
        fresh = reference_client.run(make_prompt(*key))
        report.reference_runs += 1
        if fresh.status != "success":
            record.problem = f"the reference run failed: {fresh.error()}"
            return
        expected[key] = outputs_of(reference.base, make_prompt(*key), fresh.history)
    got = outputs_of(server.base, prompt, history)
    if not got:
        record.problem = f"no outputs: {history['outputs']}"
    elif got != expected[key]:
        differ = sorted(k for k in got.keys() | expected[key].keys() if got.get(k) != expected[key].get(k))
        record.problem = f"outputs differ from a fresh run of the same prompt: {differ}"


def start_servers(root: Path, count: int) -> list[ComfyServer]:
    """`count` servers side by side, each with its own base folder holding the pack, every tiny model,
    the tiny LoRAs and ComfyUI's example image (as tests/server/helpers.py `start_server` makes them)."""
    sys.path.insert(0, str(REPO / "scripts"))
    from tiny_loras import build_tiny_loras
    from tiny_models import TINY_MODELS

    models = root / "models"
    for name, build in TINY_MODELS.items():
        build(models / name)
    loras = build_tiny_loras(models, root / "loras")

    def start(index: int) -> ComfyServer:
        base = make_base_directory(root / f"base{index}")
        for model in models.iterdir():
            (base / "models" / "diffusers" / model.name).symlink_to(model, target_is_directory=True)
        (base / "models" / "loras").mkdir(parents=True, exist_ok=True)
        for lora in loras:
            (base / "models" / "loras" / lora.name).symlink_to(lora)
        (base / "input").mkdir(exist_ok=True)
        shutil.copy(comfyui_dir() / "input" / "example.png", base / "input" / "example.png")
        return ComfyServer(base, env={"OMP_NUM_THREADS": "1"}).start()

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(start, range(count)))


def summary(report: Report, rss_from: int) -> dict[str, Any]:
    records = report.records
    curve = [record.rss_mib for record in records]
    completed = [r for r in records if r.status == "success"]
    first = len({r.workflow for r in records})  # the first pass: each workflow once
    cycle = 2 * first
    cycle_end = first + cycle
    return {
        "prompts": len(records),
        "completed": len(completed),
        "interrupted": sum(r.status == "interrupted" for r in records),
        "unexpected_failures": len(report.failures),
        "reference_runs": report.reference_runs,
        "workflows": len({r.workflow for r in records}),
        "wall_seconds": round(report.wall_seconds, 1),
        "median_prompt_seconds": round(float(np.median([r.seconds for r in completed])), 3) if completed else None,
        "rss_mib_first": round(curve[0], 1),
        f"rss_mib_at_prompt_{rss_from}": round(curve[rss_from - 1], 1),
        "rss_mib_last": round(curve[-1], 1),
        "rss_mib_max": round(max(curve), 1),
        f"rss_growth_percent_from_prompt_{rss_from}": round(report.rss_growth(rss_from), 2),
        # What a prompt holds at its end depends on its workflow (the Wan one-node prompt ~40 MiB more
        # than an example), so the curve is also compared cycle by cycle: after the first pass (one
        # prompt per workflow) the plan repeats every 2 x workflows prompts.
        "rss_mib_max_first_cycle": round(max(curve[first:cycle_end]), 1) if len(curve) >= cycle_end else None,
        "rss_mib_max_last_cycle": round(max(curve[-cycle:]), 1) if len(curve) >= cycle_end else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=3, help="size of the seed pool")
    parser.add_argument("--interrupt-every", type=int, default=9)
    parser.add_argument("--depth", type=int, default=3, help="prompts queued ahead")
    parser.add_argument("--rss-from", type=int, default=20, help="the prompt the RSS growth is measured from")
    parser.add_argument("--max-growth", type=float, default=5.0, help="percent")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.prompts < args.rss_from:
        parser.error("--prompts must be at least --rss-from")

    rng = random.Random(0)
    items = plan(args.prompts, shipped_workflows(), [42 + i for i in range(args.seeds)], args.interrupt_every, rng)
    with tempfile.TemporaryDirectory() as tmp:
        server, reference = start_servers(Path(tmp), 2)
        try:
            report = soak(server, reference, items, depth=args.depth)
        finally:
            server.stop()
            reference.stop()
    result = summary(report, args.rss_from)
    growth = report.rss_growth(args.rss_from)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "command": " ".join(["bench/soak.py", *sys.argv[1:]]),
                "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                "summary": result,
                "failures": [asdict(r) for r in report.failures],
                "per_prompt": [asdict(r) for r in report.records],
            },
            indent=1,
        )
        + "\n"
    )
    for key, value in result.items():
        print(f"{key:>40}: {value}")
    for record in report.failures:
        print(f"FAILED prompt {record.index + 1} ({record.workflow}, seed {record.seed}): {record.problem}")
    ok = not report.failures and growth < args.max_growth
    if growth >= args.max_growth:
        print(f"FAILED: RSS grew {growth:.2f}% from prompt {args.rss_from} (limit {args.max_growth}%)")
    print(f"{'ok' if ok else 'FAILED'}; the curve is in {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
