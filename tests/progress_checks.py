"""What a node's websocket `progress` messages must show for a loop of `steps` steps.

ComfyUI 0.3.75 sends every update. Newer ComfyUI throttles them (at least 100 ms and 0.5% apart;
the first, the last and any update with a preview always go out), so there the check accepts a
subset: first 1, last `steps`, strictly increasing. Both still catch a loop that reports nothing,
reports too few steps or counts past its total.
"""

from __future__ import annotations

import inspect

import comfy.utils

THROTTLED = "time" in inspect.getsource(comfy.utils.ProgressBar.update_absolute)


def assert_counts_every_step(messages: list[dict], steps: int) -> None:
    values = [message["value"] for message in messages]
    assert values, "the loop reported no progress"
    assert {message["max"] for message in messages[-1:]} == {steps}, messages[-1]
    if THROTTLED:
        assert values[0] == 1 and values[-1] == steps, values
        assert all(a < b for a, b in zip(values, values[1:], strict=False)), values
    else:
        assert values == list(range(1, steps + 1))
