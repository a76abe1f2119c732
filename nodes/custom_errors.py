"""What a custom block that failed to load leaves behind: a one-line reason and an error node.

A broken entry of the custom-blocks folder (see `custom_blocks.py`) must be visible on the canvas, not
only in the log. Its error node sits in the entry's category, says in its name that the entry failed to
load, carries the reason as its description, and raises the reason when a workflow runs it.
"""

from __future__ import annotations

import functools
import os
import traceback
from pathlib import Path
from typing import Any

from comfy_api.latest import io

from ..adapters.factory import node_class

# diffusers copies the .py of a custom block in its own format into its modules cache and imports
# it from there: frames of that copy are the user's code too.
DIFFUSERS_MODULES = os.sep + "diffusers_modules" + os.sep


class CustomBlockLoadError(RuntimeError):
    """Raised by the error node of a custom block that failed to load."""


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def describe_error(error: BaseException, entry_path: Path) -> str:
    """`Type: message (file, line N)`, on one line, with the innermost line of the user's own code
    (under `entry_path`, or diffusers' copy of it) that the error went through."""
    text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    if isinstance(error, SyntaxError):  # the message already names the file and the line
        return one_line(text)
    root = os.path.realpath(entry_path)
    frames = traceback.extract_tb(error.__traceback__)
    own = [
        frame
        for frame in frames
        if os.path.realpath(frame.filename) == root
        or os.path.realpath(frame.filename).startswith(root + os.sep)
        or DIFFUSERS_MODULES in frame.filename
    ]
    if own:
        text += f" ({os.path.basename(own[-1].filename)}, line {own[-1].lineno})"
    return one_line(text)


def make_error_node(node_id: str, folder: str, category: str, path: Path, reason: str) -> type[io.ComfyNode]:
    """A node standing for the custom block folder `folder` that failed to load: its description is the
    reason, and running it raises the reason (so a workflow that needs the folder says why it cannot run)."""
    message = f"custom block '{folder}' ({path}) failed to load: {reason}. Fix it and restart ComfyUI."
    schema = functools.partial(
        io.Schema,
        node_id=node_id,
        display_name=f"{folder}: failed to load",
        category=category,
        description=message,
        inputs=[],
        outputs=[],
        is_output_node=True,
    )

    def run(values: dict[str, Any], unique_id: Any) -> list[Any]:
        raise CustomBlockLoadError(message)

    return node_class(node_id, schema, run, REASON=reason, __doc__=message)


__all__ = ["CustomBlockLoadError", "describe_error", "make_error_node", "one_line"]
