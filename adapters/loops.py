"""Per-iteration progress, interrupt and previews for every loop block in a node's block tree.

Diffusers loop blocks (`LoopSequentialPipelineBlocks`) have no callback hook, so the node's private
copy of each loop is instrumented without forking diffusers: its `loop_step` is wrapped (an interrupt
check before every iteration, a progress update and an optional latent preview after it), and its
`progress_bar` is replaced so the loop's declared total reaches ComfyUI instead of a tqdm bar.
The wrappers report to whichever `LoopReporter` the running node installed (`reporting`).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator
from typing import Any

import comfy.model_management as mm
import comfy.utils
import latent_preview
from diffusers.modular_pipelines import LoopSequentialPipelineBlocks, ModularPipelineBlocks

logger = logging.getLogger(__name__)

_reporter: contextvars.ContextVar[LoopReporter | None] = contextvars.ContextVar("mdiff_loop_reporter", default=None)


class LoopReporter:
    """Progress for one node execution: ComfyUI's `ProgressBar` (websocket `progress` messages) and,
    when the preview method is on and the latent format is known, JPEG previews of the latents."""

    def __init__(self, node_id: str | None, bundle: Any = None):
        self.node_id = node_id
        self.latent_format = getattr(bundle, "latent_format", None)
        self.preview_latents = getattr(bundle, "preview_latents", None)
        self.total: int | None = None
        self.step = 0
        self._bar: comfy.utils.ProgressBar | None = None
        self._previewer: Any = None

    def set_total(self, total: int) -> None:
        self.total, self.step = int(total), 0
        self._bar = comfy.utils.ProgressBar(self.total, node_id=self.node_id)
        if self.latent_format is not None:
            self._previewer = latent_preview.get_previewer(mm.get_torch_device(), self.latent_format)

    def before_step(self) -> None:
        mm.throw_exception_if_processing_interrupted()

    def after_step(self, block_state: Any) -> None:
        if self._bar is None:  # a loop that never announced its length: the bar grows with it
            self._bar = comfy.utils.ProgressBar(1, node_id=self.node_id)
        self.step += 1
        total = self.total if self.total is not None and self.total >= self.step else self.step
        preview = None
        latents = getattr(block_state, "latents", None)
        if self._previewer is not None and latents is not None:
            if self.preview_latents is not None:
                latents = self.preview_latents(latents, block_state)
            preview = self._previewer.decode_latent_to_preview_image("JPEG", latents.float())
        self._bar.update_absolute(self.step, total, preview)


@contextlib.contextmanager
def reporting(reporter: LoopReporter) -> Iterator[LoopReporter]:
    token = _reporter.set(reporter)
    try:
        yield reporter
    finally:
        _reporter.reset(token)


class _QuietBar:
    """Stands in for the tqdm bar a loop asks for; progress is reported per `loop_step` instead."""

    def __init__(self, iterable=None):
        self.iterable = iterable

    def __iter__(self):
        return iter(self.iterable)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def loop_blocks(block: ModularPipelineBlocks) -> list[LoopSequentialPipelineBlocks]:
    found = [block] if isinstance(block, LoopSequentialPipelineBlocks) else []
    for sub_block in (getattr(block, "sub_blocks", None) or {}).values():
        if isinstance(sub_block, ModularPipelineBlocks):
            found += loop_blocks(sub_block)
    return found


def instrument_loops(block: ModularPipelineBlocks) -> int:
    """Instrument every loop in `block`'s tree (in place: pass the node's private copy). Returns the
    number of loops found."""
    loops = loop_blocks(block)
    for loop in loops:
        original_step = loop.loop_step
        original_bar = loop.progress_bar

        def loop_step(components, block_state, _original=original_step, **kwargs):
            reporter = _reporter.get()
            if reporter is not None:
                reporter.before_step()
            components, block_state = _original(components, block_state, **kwargs)
            if reporter is not None:
                reporter.after_step(block_state)
            return components, block_state

        def progress_bar(iterable=None, total=None, _original=original_bar):
            reporter = _reporter.get()
            if reporter is None:
                return _original(iterable=iterable, total=total)
            reporter.set_total(total if total is not None else len(iterable))
            return _QuietBar(iterable)

        loop.loop_step = loop_step
        loop.progress_bar = progress_bar
    return len(loops)
