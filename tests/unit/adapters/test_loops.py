"""Progress and interrupt for the three loop shapes diffusers families use, with a real scheduler:
a loop whose iterations are the denoising steps (with a declared bar), a loop over chunks whose leaf
runs the timestep loop itself (no bar: only the scheduler sees each step), and a loop over chunks
whose leaf updates the wrapper's declared bar."""

from __future__ import annotations

import comfy.model_management as mm
import comfy.utils
import pytest
import torch
from comfyui_modular_diffusers.adapters.loops import BAR, LoopReporter, instrument_loops, watching
from diffusers import FlowMatchEulerDiscreteScheduler
from diffusers.modular_pipelines import (
    ComponentSpec,
    InputParam,
    LoopSequentialPipelineBlocks,
    ModularPipelineBlocks,
    OutputParam,
    PipelineState,
)

STEPS, CHUNKS = 4, 3
SCHEDULER = ComponentSpec(
    "scheduler", FlowMatchEulerDiscreteScheduler, default_creation_method="from_config", config={}
)


class StepLeaf(ModularPipelineBlocks):
    """One denoising step per call (the common shape: the wrapper iterates timesteps)."""

    @property
    def expected_components(self):
        return [SCHEDULER]

    @property
    def inputs(self):
        return [InputParam("latents")]

    def __call__(self, components, block_state, i, t):
        noise = torch.ones_like(block_state.latents)
        block_state.latents = components.scheduler.step(noise, t, block_state.latents, return_dict=False)[0]
        return components, block_state


class StepLoop(LoopSequentialPipelineBlocks):
    block_classes = [StepLeaf]
    block_names = ["step"]

    @property
    def description(self):
        return "timestep loop with a bar"

    @property
    def loop_inputs(self):
        return [InputParam("latents")]

    @property
    def intermediate_outputs(self):
        return [OutputParam("latents")]

    def __call__(self, components, state):
        block_state = self.get_block_state(state)
        components.scheduler.set_timesteps(STEPS)
        with self.progress_bar(total=STEPS) as bar:
            for i, t in enumerate(components.scheduler.timesteps):
                components, block_state = self.loop_step(components, block_state, i=i, t=t)
                bar.update()
        self.set_block_state(state, block_state)
        return components, state


class ChunkLeaf(ModularPipelineBlocks):
    """The whole timestep loop of one chunk inside a leaf (private progress, no hook per step)."""

    update_bar = False

    @property
    def expected_components(self):
        return [SCHEDULER]

    @property
    def inputs(self):
        return [InputParam("latents")]

    def __call__(self, components, block_state, k):
        components.scheduler.set_timesteps(STEPS)
        for t in components.scheduler.timesteps:
            noise = torch.ones_like(block_state.latents)
            block_state.latents = components.scheduler.step(noise, t, block_state.latents, return_dict=False)[0]
            if self.update_bar:
                block_state.progress_bar.update()
        return components, block_state


class BarLeaf(ChunkLeaf):
    update_bar = True


class ChunkLoop(LoopSequentialPipelineBlocks):
    block_classes = [ChunkLeaf]
    block_names = ["chunk"]
    declares_bar = False

    @property
    def description(self):
        return "chunk loop"

    @property
    def loop_inputs(self):
        return [InputParam("latents")]

    @property
    def intermediate_outputs(self):
        return [OutputParam("latents")]

    def __call__(self, components, state):
        block_state = self.get_block_state(state)
        if self.declares_bar:
            with self.progress_bar(total=CHUNKS * STEPS) as block_state.progress_bar:
                for k in range(CHUNKS):
                    components, block_state = self.loop_step(components, block_state, k=k)
        else:
            for k in range(CHUNKS):
                components, block_state = self.loop_step(components, block_state, k=k)
        self.set_block_state(state, block_state)
        return components, state


class BarChunkLoop(ChunkLoop):
    block_classes = [BarLeaf]
    declares_bar = True


class CountedChunkLoop(ChunkLoop):
    """A chunk loop without a bar that says how many chunks it runs (a required int loop input)."""

    @property
    def loop_inputs(self):
        return [InputParam("latents"), InputParam("num_chunks", type_hint=int, required=True)]

    def __call__(self, components, state):
        block_state = self.get_block_state(state)
        for k in range(block_state.num_chunks):
            components, block_state = self.loop_step(components, block_state, k=k)
        self.set_block_state(state, block_state)
        return components, state


class CountedStepLoop(StepLoop):
    """A timestep loop without a bar whose step count is a required int loop input: one schedule, set
    before the loop, spans every iteration."""

    @property
    def loop_inputs(self):
        return [InputParam("latents"), InputParam("num_inference_steps", type_hint=int, required=True)]

    def __call__(self, components, state):
        block_state = self.get_block_state(state)
        components.scheduler.set_timesteps(block_state.num_inference_steps)
        for i, t in enumerate(components.scheduler.timesteps):
            components, block_state = self.loop_step(components, block_state, i=i, t=t)
        self.set_block_state(state, block_state)
        return components, state


@pytest.fixture
def progress():
    seen = []
    comfy.utils.set_progress_bar_global_hook(lambda value, total, preview, node_id=None: seen.append((value, total)))
    yield seen
    comfy.utils.set_progress_bar_global_hook(None)
    mm.interrupt_current_processing(False)


def run_loop(block, stop_at: int | None = None, seen: list | None = None):
    block = instrument_loops_copy(block)
    pipeline = block.init_pipeline()
    scheduler = FlowMatchEulerDiscreteScheduler()
    pipeline.update_components(scheduler=scheduler)
    steps = []
    original = FlowMatchEulerDiscreteScheduler.step

    def counting_step(self, *args, **kwargs):
        steps.append(1)
        if stop_at is not None and len(steps) == stop_at:
            mm.interrupt_current_processing(True)  # what the Cancel button does, mid-step
        return original(self, *args, **kwargs)

    state = PipelineState()
    state.set("latents", torch.zeros(1, 4, 2, 2))
    state.set("num_chunks", CHUNKS)
    state.set("num_inference_steps", STEPS)
    reporter = LoopReporter("7")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(FlowMatchEulerDiscreteScheduler, "step", counting_step)
        with watching(reporter, [scheduler]):
            try:
                block(pipeline, state)
            except mm.InterruptProcessingException:
                pass
    assert "step" not in vars(scheduler)  # untapped after the run
    return len(steps)


def instrument_loops_copy(block):
    assert instrument_loops(block) == 1
    return block


@pytest.mark.parametrize("loop", [StepLoop, ChunkLoop, BarChunkLoop])
def test_every_denoising_step_counts_once(progress, loop):
    total_steps = STEPS if loop is StepLoop else CHUNKS * STEPS
    assert run_loop(loop()) == total_steps
    values = [value for value, _ in progress]
    assert values == list(range(1, total_steps + 1))
    assert progress[-1] == (total_steps, total_steps)


@pytest.mark.parametrize("loop", [CountedChunkLoop, CountedStepLoop])
def test_a_loop_that_says_its_count_reports_the_total_from_the_first_step(progress, loop):
    """No bar: a loop over chunks with a schedule per chunk shows chunks x steps from its first step;
    a loop whose iterations are the steps of one schedule shows the schedule's steps (not their square)."""
    total_steps = CHUNKS * STEPS if loop is CountedChunkLoop else STEPS
    assert run_loop(loop()) == total_steps
    assert progress == [(value, total_steps) for value in range(1, total_steps + 1)]


@pytest.mark.parametrize("loop", [StepLoop, ChunkLoop, BarChunkLoop, CountedChunkLoop])
def test_interrupt_stops_within_one_step(progress, loop):
    # The interrupt arrives during step 2 of the first chunk; no further step may start.
    assert run_loop(loop(), stop_at=2) == 2


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_previews_decode_half_precision_latents(progress, dtype, monkeypatch):
    import comfy.latent_formats
    from comfy.cli_args import LatentPreviewMethod, args

    monkeypatch.setattr(args, "preview_method", LatentPreviewMethod.Latent2RGB)
    previews = []
    comfy.utils.set_progress_bar_global_hook(lambda value, total, preview, node_id=None: previews.append(preview))
    bundle = type("Bundle", (), {"latent_format": comfy.latent_formats.SDXL(), "preview_latents": None})()
    reporter = LoopReporter("7", bundle)
    reporter.declare_total(2)
    reporter.advance("bar", torch.randn(1, 4, 8, 8, dtype=dtype))
    assert previews and previews[0] is not None and previews[0][0] == "JPEG"
    assert not reporter._preview_failed


class BatchUpdateLoop(StepLoop):
    """A loop that reports its steps to the bar two at a time (`bar.update(2)`)."""

    def __call__(self, components, state):
        block_state = self.get_block_state(state)
        components.scheduler.set_timesteps(STEPS)
        with self.progress_bar(total=STEPS) as bar:
            for i, t in enumerate(components.scheduler.timesteps):
                components, block_state = self.loop_step(components, block_state, i=i, t=t)
                if i % 2:
                    bar.update(2)
        self.set_block_state(state, block_state)
        return components, state


def test_a_bar_update_of_several_steps_counts_each(progress):
    assert run_loop(BatchUpdateLoop()) == STEPS
    assert [value for value, _ in progress] == list(range(1, STEPS + 1))
    assert progress[-1] == (STEPS, STEPS)


def test_the_total_adds_up_over_several_bars(progress):
    # Two loops one after the other in one node (e.g. two stages), each with its own bar.
    reporter = LoopReporter("7")
    reporter.declare_total(3)
    for _ in range(3):
        reporter.advance(BAR)
    reporter.declare_total(2)
    for _ in range(2):
        reporter.advance(BAR)
    assert progress == [(1, 3), (2, 3), (3, 3), (4, 5), (5, 5)]


def test_tapped_schedulers_keep_their_signatures():
    """Blocks read a scheduler's signatures (diffusers' `retrieve_timesteps`: does set_timesteps take
    `sigmas`? `prepare_extra_step_kwargs`: does step take `generator`?), so the taps keep the class's."""
    import inspect

    from comfyui_modular_diffusers.adapters.loops import tap_schedulers, untap_schedulers

    scheduler, untapped = FlowMatchEulerDiscreteScheduler(), FlowMatchEulerDiscreteScheduler()
    reporter = LoopReporter(None)
    tap_schedulers(reporter, [scheduler])
    try:
        for name in ("set_timesteps", "step"):
            assert name in vars(scheduler)  # tapped
            assert inspect.signature(getattr(scheduler, name)) == inspect.signature(getattr(untapped, name))
        assert "sigmas" in inspect.signature(scheduler.set_timesteps).parameters
        assert "generator" in inspect.signature(scheduler.step).parameters
        scheduler.set_timesteps(sigmas=[1.0, 0.5])
        assert len(scheduler.timesteps) == 2
    finally:
        untap_schedulers(reporter)
