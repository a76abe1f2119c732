"""Known-benign diffusers warnings are kept out of the log during the pack's own calls only."""

from __future__ import annotations

import copy
import logging
import re

import pytest
import torch
from comfyui_modular_diffusers.adapters.quiet import (
    KNOWN_BENIGN,
    KnownBenignFilter,
    known_benign_diffusers_lines_hidden,
)
from diffusers import AutoencoderKL, ClassifierFreeGuidance
from diffusers.loaders import StableDiffusionXLLoraLoaderMixin
from diffusers.modular_pipelines.stable_diffusion_xl import StableDiffusionXLAutoBlocks


@pytest.fixture
def diffusers_lines():
    """What diffusers' own loggers print (they do not propagate to the root logger)."""
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    loggers = [logging.getLogger(name) for name in KNOWN_BENIGN]
    for logger in loggers:
        logger.addHandler(handler)
    yield lines
    for logger in loggers:
        logger.removeHandler(handler)


def a_node_runs_setup():
    """What a node run does with diffusers: its pipeline, and copies of its guider with the node's scale."""
    pipeline = StableDiffusionXLAutoBlocks().sub_blocks["denoise"].init_pipeline()
    guider = ClassifierFreeGuidance.from_config(pipeline.guider.config, guidance_scale=7.0)
    pipeline.update_components(guider=guider, scheduler=copy.deepcopy(pipeline.scheduler))
    # What diffusers' from_single_file does with torch_dtype: warns though no module is to stay in float32.
    AutoencoderKL(block_out_channels=(8,), norm_num_groups=8).to(torch.float32)
    # What a LoRA node does with a LyCORIS DoRA file: diffusers' reader warns that it drops `dora_scale`.
    name = "lora_unet_down_blocks_0_attentions_0_proj_in"
    dora = {f"{name}.lora_down.weight": torch.zeros(2, 4), f"{name}.lora_up.weight": torch.zeros(4, 2)}
    StableDiffusionXLLoraLoaderMixin.lora_state_dict({**dora, f"{name}.dora_scale": torch.ones(4, 1)})


def test_the_lines_are_hidden_inside_the_packs_calls(diffusers_lines):
    with known_benign_diffusers_lines_hidden():
        a_node_runs_setup()
        logging.getLogger("diffusers.guiders.guider_utils").warning("another guider warning")
    assert diffusers_lines == ["another guider warning"]  # every other warning stays


def test_outside_the_packs_calls_diffusers_logs_them_as_ever(diffusers_lines):
    with known_benign_diffusers_lines_hidden():
        pass
    a_node_runs_setup()
    for pattern in KNOWN_BENIGN.values():
        assert any(re.match(pattern, line) for line in diffusers_lines), pattern


def test_one_filter_per_logger_however_often_it_is_entered():
    for _ in range(3):
        with known_benign_diffusers_lines_hidden():
            pass
    for name in KNOWN_BENIGN:
        assert sum(isinstance(item, KnownBenignFilter) for item in logging.getLogger(name).filters) == 1
