"""A short soak (bench/soak.py: one pass plus one soak cycle instead of 200 prompts): every shipped
workflow, seeds varied, some prompts interrupted mid-run, three queued ahead on a server of its own; no
unexpected failure, every completed result equal to the same prompt run on the session server (which never
sees the soak's interrupts), and the soak server's RSS not growing.

RSS bound: the long soak measures from prompt 20 to 200; here, from the prompt after the first pass (one
prompt per workflow: N workflows, prompt N + 1) to one soak cycle later (2N prompts: each workflow twice
in a row), with the same 5%. Both points are at the same place of the soak's cycle because what the server
holds after a prompt depends on the workflow it just ran (~40 MiB more after the Wan one-node prompt than
after a guide example: 4% of the ~1 GiB RSS), so two points at other places of the cycle would compare
unlike states. Over these 2N prompts (32 for 16 workflows), 5% (about 50 MiB) catches any leak of 2 MiB or
more per prompt, e.g. a tiny model's weights kept per run."""

from __future__ import annotations

import importlib.util
import logging
import random
import sys

import pytest
from comfy_harness import REPO
from helpers import start_server

MAX_GROWTH = 5.0
logger = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def soak_module():
    spec = importlib.util.spec_from_file_location("bench_soak", REPO / "bench" / "soak.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def soak_server(tmp_path_factory, tiny_model):
    comfy = start_server(tmp_path_factory.mktemp("soak"), tiny_model)
    yield comfy
    comfy.stop()


def test_short_soak(server, soak_server, soak_module):
    workflows = soak_module.shipped_workflows()
    rss_from = len(workflows) + 1  # the first prompt after one pass over the workflows
    prompts = rss_from + 2 * len(workflows)  # one soak cycle later
    items = soak_module.plan(prompts, workflows, [42, 43, 44], interrupt_every=9, rng=random.Random(0))
    report = soak_module.soak(soak_server, server, items, depth=3, log=logger.info)
    summary = soak_module.summary(report, rss_from)
    logger.info("short soak: %s", summary)

    assert [record.index for record in report.records] == list(range(prompts))
    assert not report.failures, "\n".join(
        f"prompt {r.index + 1} ({r.workflow}, seed {r.seed}): {r.problem}" for r in report.failures
    )
    interrupted = [record for record in report.records if record.interrupted]
    assert len(interrupted) >= 3 and all(record.status == "interrupted" for record in interrupted)
    completed = {record.workflow for record in report.records if record.status == "success"}
    assert completed == set(workflows)  # every shipped workflow completed and matched a fresh run
    assert report.reference_runs >= len(workflows)
    growth = report.rss_growth(rss_from)
    curve = [round(record.rss_mib) for record in report.records]
    assert growth < MAX_GROWTH, f"RSS grew {growth:.1f}% from prompt {rss_from} to {prompts}: {curve} MiB"
