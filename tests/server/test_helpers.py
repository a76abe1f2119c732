"""The server tests' progress check accepts newest ComfyUI's throttled updates and still catches broken loops."""

from __future__ import annotations

import helpers
import pytest


def messages(values, steps):
    return [{"value": value, "max": steps} for value in values]


@pytest.mark.parametrize("throttled", [False, True])
def test_every_step_passes_and_broken_loops_fail(monkeypatch, throttled):
    monkeypatch.setattr(helpers, "THROTTLED", throttled)
    helpers.assert_counts_every_step(messages(range(1, 8), 7), 7)
    for broken in ([], [1], [1, 2, 3], [2, 7], [1, 5, 5, 7], [1, 8]):
        with pytest.raises(AssertionError):
            helpers.assert_counts_every_step(messages(broken, 7), 7)


def test_throttled_updates_are_accepted_only_on_a_throttling_comfyui(monkeypatch):
    monkeypatch.setattr(helpers, "THROTTLED", True)
    helpers.assert_counts_every_step(messages([1, 4, 7], 7), 7)
    monkeypatch.setattr(helpers, "THROTTLED", False)
    with pytest.raises(AssertionError):
        helpers.assert_counts_every_step(messages([1, 4, 7], 7), 7)
