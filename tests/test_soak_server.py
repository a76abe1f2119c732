"""A short soak (bench/soak.py, 46 prompts instead of 200): every shipped workflow, seeds varied, some
prompts interrupted mid-run, three queued ahead on a server of its own; no unexpected failure, every
completed result equal to the same prompt run on the session server (which never sees the soak's
interrupts), and the soak server's RSS not growing.

RSS bound: the long soak measures from prompt 20 to 200; here, from prompt 16 to 46, with the same 5%.
Both points are at the same place of the soak's cycle (after the first pass of one prompt per workflow,
the plan repeats every 30 prompts: each workflow twice in a row) because what the server holds after a
prompt depends on the workflow it just ran (~40 MiB more after the Wan one-node prompt than after a
guide example: 4% of the ~1 GiB RSS), so prompt 10 against prompt 40 would compare unlike states. Over
these 30 prompts, 5% (about 50 MiB) catches any leak of 2 MiB or more per prompt, e.g. a tiny model's
weights kept per run."""

from __future__ import annotations

import importlib.util
import logging
import random
import sys

import pytest
from comfy_harness import REPO

PROMPTS, RSS_FROM, MAX_GROWTH = 46, 16, 5.0
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
    from conftest import start_server

    comfy = start_server(tmp_path_factory.mktemp("soak"), tiny_model)
    yield comfy
    comfy.stop()


def test_short_soak(server, soak_server, soak_module):
    workflows = soak_module.shipped_workflows()
    assert PROMPTS == RSS_FROM + 2 * len(workflows), "RSS_FROM and PROMPTS one soak cycle apart"
    items = soak_module.plan(PROMPTS, workflows, [42, 43, 44], interrupt_every=9, rng=random.Random(0))
    report = soak_module.soak(soak_server, server, items, depth=3, log=logger.info)
    summary = soak_module.summary(report, RSS_FROM)
    logger.info("short soak: %s", summary)

    assert [record.index for record in report.records] == list(range(PROMPTS))
    assert not report.failures, "\n".join(
        f"prompt {r.index + 1} ({r.workflow}, seed {r.seed}): {r.problem}" for r in report.failures
    )
    interrupted = [record for record in report.records if record.interrupted]
    assert len(interrupted) >= 3 and all(record.status == "interrupted" for record in interrupted)
    completed = {record.workflow for record in report.records if record.status == "success"}
    assert completed == set(workflows)  # every shipped workflow completed and matched a fresh run
    assert report.reference_runs >= len(workflows)
    growth = report.rss_growth(RSS_FROM)
    curve = [round(record.rss_mib) for record in report.records]
    assert growth < MAX_GROWTH, f"RSS grew {growth:.1f}% from prompt {RSS_FROM} to {PROMPTS}: {curve} MiB"
