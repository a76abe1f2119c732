"""Per-step progress, interrupt and previews for every denoising loop a node runs.

Diffusers loop blocks (`LoopSequentialPipelineBlocks`) have no callback hook, and some families run
their timestep loop inside one leaf block per chunk or segment, so one hook is not enough. A node's
run is watched at three places, none of them family-specific:

1. the tqdm bar a loop asks for (`progress_bar`) is replaced: its declared total and each `update()`
   reach ComfyUI's progress bar;
2. the run's own copy of every scheduler is tapped: an interrupt check before each `step()` (so a
   loop inside one leaf stops within one denoising step), and each step counts when no bar does;
3. every loop's `loop_step` is wrapped: an interrupt check before each iteration, its latents kept
   for the preview, and each iteration counts when neither a bar nor a scheduler does (loops
   without a scheduler, e.g. one that steps by sigma itself).

Without a bar the total is not declared: it is the steps left in the scheduler's current schedule;
when each iteration of a loop sets a schedule of its own (a loop over chunks or segments whose leaf
runs the whole timestep loop per chunk) and the loop says how many iterations it runs (its one
required int loop input), the steps of one iteration times the iterations left, so the bar shows one
total, every step of every chunk, from its first step on.

Previews decode the latest latents with ComfyUI's previewer for the bundle's latent format, after
the family's own `preview_latents` conversion (packed tokens -> image-shaped latents) when it has one.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import types
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import comfy.model_management as mm
import comfy.utils
import latent_preview
import torch
from diffusers import SchedulerMixin
from diffusers.modular_pipelines import LoopSequentialPipelineBlocks, ModularPipelineBlocks

logger = logging.getLogger(__name__)

_reporter: contextvars.ContextVar[LoopReporter | None] = contextvars.ContextVar("mdiff_loop_reporter", default=None)

BAR, SCHEDULER, LOOP = "bar", "scheduler", "loop"  # progress sources, most trusted first


class LoopReporter:
    """Progress for one node execution: ComfyUI's `ProgressBar` (websocket `progress` messages) and,
    when the preview method is on and the latent format is known, JPEG previews of the latents."""

    def __init__(self, node_id: str | None, bundle: Any = None):
        self.node_id = node_id
        self.latent_format = getattr(bundle, "latent_format", None)
        self.preview_latents = getattr(bundle, "preview_latents", None)
        self.counts = {BAR: 0, SCHEDULER: 0, LOOP: 0}
        self.declared_total: int | None = None
        self.shown = 0
        self.latents: Any = None
        self.block_state: Any = None
        self.schedulers: list[Any] = []
        self.schedules = 0  # how often the tapped schedulers' set_timesteps ran
        self.iteration: Iteration | None = None
        self._bar: comfy.utils.ProgressBar | None = None
        self._previewer: Any = None
        self._preview_failed = False

    # -- what the instrumented places call -------------------------------------------------------

    def declare_total(self, total: int) -> None:
        """A loop asked for a tqdm bar of `total` steps: the bar is the progress from now on."""
        self.declared_total = int(total) + self.counts[BAR]

    def check_interrupt(self) -> None:
        mm.throw_exception_if_processing_interrupted()

    def begin_iteration(self, loop: Any, count: int | None) -> None:
        """`loop` starts an iteration; `count`: how many iterations it runs, when it says."""
        previous = self.iteration
        if count is None:
            self.iteration = None
        elif previous is not None and previous.loop is loop and previous.index + 1 < previous.count:
            self.iteration = Iteration(loop, previous.index + 1, previous.count, self._progress(), self.schedules)
        else:
            self.iteration = Iteration(loop, 0, count, self._progress(), self.schedules)

    def advance(self, source: str, latents: Any = None, block_state: Any = None) -> None:
        if latents is not None:
            self.latents, self.block_state = latents, block_state
        self.counts[source] += 1
        step = self._progress()
        if step > self.shown:
            self.shown = step
            self._report()

    # -- internals -------------------------------------------------------------------------------

    def _progress(self) -> int:
        if self.declared_total is not None or self.counts[BAR]:
            return self.counts[BAR]
        return self.counts[SCHEDULER] or self.counts[LOOP]

    def _total(self) -> int:
        if self.declared_total is not None:
            return max(self.declared_total, self.shown)
        # No declared total: the steps left in the scheduler's current schedule, else a growing bar;
        # times the iterations left when each iteration of a loop that says how many it runs has its own
        # schedule (or, without a scheduler, is one step).
        stepped = bool(self.counts[SCHEDULER])
        left = self._steps_left() if stepped else 0
        iteration = self.iteration
        if iteration is None or (stepped and self.schedules == iteration.schedules):
            return self.shown + left
        per_iteration = self.shown - iteration.start + left
        return max(self.shown, iteration.start + per_iteration * (iteration.count - iteration.index))

    def _steps_left(self) -> int:
        left = 0
        for scheduler in self.schedulers:
            timesteps, index = getattr(scheduler, "timesteps", None), getattr(scheduler, "step_index", None)
            if timesteps is not None and isinstance(index, int):
                left = max(left, len(timesteps) - index)
        return left

    def _report(self) -> None:
        total = self._total()
        if self._bar is None:
            self._bar = comfy.utils.ProgressBar(total, node_id=self.node_id)
        self._bar.update_absolute(self.shown, total, self._preview())

    def _preview(self) -> Any:
        if self.latent_format is None or self.latents is None or self._preview_failed:
            return None
        try:
            if self._previewer is None:
                self._previewer = latent_preview.get_previewer(mm.get_torch_device(), self.latent_format)
                if self._previewer is None:  # the preview method is off
                    self._preview_failed = True
                    return None
            latents = self.latents
            if self.preview_latents is not None:
                latents = self.preview_latents(latents, self.block_state)
            if not _image_shaped(latents, self.latent_format):
                return None
            return self._previewer.decode_latent_to_preview_image("JPEG", latents.float())
        except Exception as error:  # a preview must never fail the run
            logger.warning("latent preview switched off for this run: %s: %s", type(error).__name__, error)
            self._preview_failed = True
            return None


@dataclass(frozen=True)
class Iteration:
    """The iteration `index` (of `count`) of `loop` that began when the progress was `start` and the
    schedulers had been set `schedules` times."""

    loop: Any
    index: int
    count: int
    start: int
    schedules: int


def _image_shaped(latents: Any, latent_format: Any) -> bool:
    channels = getattr(latent_format, "latent_channels", None)
    return isinstance(latents, torch.Tensor) and latents.ndim in (4, 5) and latents.shape[1] == channels


@contextlib.contextmanager
def watching(reporter: LoopReporter, components: Iterable[Any] = ()) -> Iterator[LoopReporter]:
    """The instrumented loops report to `reporter` while the block runs, and the run's own scheduler
    copies among `components` are tapped (never shared ones: pass the run's copies); untapped after."""
    token = _reporter.set(reporter)
    tap_schedulers(reporter, components)
    try:
        yield reporter
    finally:
        _reporter.reset(token)
        untap_schedulers(reporter)


class _ReportingBar:
    """Stands in for the tqdm bar a loop asks for: its updates go to the running node's reporter."""

    def __init__(self, reporter: LoopReporter, iterable: Iterable | None = None):
        self.reporter = reporter
        self.iterable = iterable

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def update(self, n: int = 1) -> None:
        for _ in range(n):
            self.reporter.advance(BAR)

    def close(self) -> None:
        pass


# -- schedulers --------------------------------------------------------------------------------


def tap_schedulers(reporter: LoopReporter, components: Iterable[Any]) -> None:
    """Tap this run's own scheduler copies (never shared ones: the caller passes the copies)."""
    for component in components:
        if isinstance(component, SchedulerMixin) and "step" not in vars(component):
            _tap(component, "step", _tapped_step)
            _tap(component, "set_timesteps", _tapped_set_timesteps)
            reporter.schedulers.append(component)


def _tap(scheduler: Any, name: str, tapped: Callable[..., Any]) -> None:
    """Make `tapped` the scheduler's own `name` method, with the class method's signature: blocks read it
    (`inspect.signature`: whether set_timesteps takes `sigmas`, whether step takes `generator`)."""

    @functools.wraps(getattr(type(scheduler), name))
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        return tapped(self, *args, **kwargs)

    setattr(scheduler, name, types.MethodType(method, scheduler))


def untap_schedulers(reporter: LoopReporter) -> None:
    for scheduler in reporter.schedulers:
        vars(scheduler).pop("step", None)
        vars(scheduler).pop("set_timesteps", None)
    reporter.schedulers.clear()


def _tapped_set_timesteps(scheduler: Any, *args: Any, **kwargs: Any) -> Any:
    output = type(scheduler).set_timesteps(scheduler, *args, **kwargs)
    reporter = _reporter.get()
    if reporter is not None and any(scheduler is tapped for tapped in reporter.schedulers):
        reporter.schedules += 1
    return output


def _tapped_step(scheduler: Any, *args: Any, **kwargs: Any) -> Any:
    reporter = _reporter.get()
    if reporter is not None:
        reporter.check_interrupt()
    output = type(scheduler).step(scheduler, *args, **kwargs)
    # A deep copy of a tapped scheduler carries the tap; only the run's own copy reports.
    if reporter is not None and any(scheduler is tapped for tapped in reporter.schedulers):
        latents = output[0] if isinstance(output, tuple) else getattr(output, "prev_sample", None)
        reporter.advance(SCHEDULER, latents)
    return output


# -- loops -------------------------------------------------------------------------------------


def loop_blocks(block: ModularPipelineBlocks) -> list[LoopSequentialPipelineBlocks]:
    found = [block] if isinstance(block, LoopSequentialPipelineBlocks) else []
    for sub_block in (getattr(block, "sub_blocks", None) or {}).values():
        if isinstance(sub_block, ModularPipelineBlocks):
            found += loop_blocks(sub_block)
    return found


def iteration_count_input(loop: LoopSequentialPipelineBlocks) -> str | None:
    """The loop input that says how many iterations `loop` runs: its one required int loop input
    (a number of steps, chunks or segments), if it has exactly one."""
    names = [param.name for param in loop.loop_inputs if param.required and param.type_hint is int]
    return names[0] if len(names) == 1 else None


def _iteration_count(block_state: Any, name: str | None) -> int | None:
    value = getattr(block_state, name, None) if name is not None else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def instrument_loops(block: ModularPipelineBlocks) -> int:
    """Instrument every loop in `block`'s tree (in place: pass the node's private copy). Returns the
    number of loops found."""
    loops = loop_blocks(block)
    for loop in loops:
        original_step = loop.loop_step
        original_bar = loop.progress_bar
        count_input = iteration_count_input(loop)

        def loop_step(components, block_state, _original=original_step, _loop=loop, _count=count_input, **kwargs):
            reporter = _reporter.get()
            if reporter is not None:
                reporter.check_interrupt()
                reporter.begin_iteration(_loop, _iteration_count(block_state, _count))
            components, block_state = _original(components, block_state, **kwargs)
            if reporter is not None:
                reporter.advance(LOOP, getattr(block_state, "latents", None), block_state)
            return components, block_state

        def progress_bar(iterable=None, total=None, _original=original_bar):
            reporter = _reporter.get()
            if reporter is None:
                return _original(iterable=iterable, total=total)
            reporter.declare_total(total if total is not None else len(iterable))
            return _ReportingBar(reporter, iterable)

        loop.loop_step = loop_step
        loop.progress_bar = progress_bar
    return len(loops)
