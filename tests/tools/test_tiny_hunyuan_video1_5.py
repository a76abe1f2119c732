"""The tiny random-weight HunyuanVideo 1.5 text-to-video folder (scripts/tiny_recipes/hunyuan_video1_5.py) loads
offline as a Modular Diffusers pipeline (HunyuanVideo15ModularPipeline, HunyuanVideo15AutoBlocks) that makes
5-frame 64x64 videos, visibly different for other prompts, other quoted (glyph) texts and other seeds. What every
build does (determinism, idempotence, marker, the command line) is in test_tiny_build.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

MODEL = "tiny-hunyuan-video15"
HEIGHT, WIDTH, FRAMES = 64, 64, 5  # 2 latent frames of 4x4 (16x VAE); (FRAMES - 1) must be a multiple of 4
COMPONENTS = (
    "transformer",
    "vae",
    "text_encoder",
    "tokenizer",
    "text_encoder_2",
    "tokenizer_2",
    "scheduler",
    "guider",
)
PROMPT = 'a neon sign that says "OPEN" in the rain'


@pytest.fixture(scope="module")
def pipe(tiny_pipeline):
    return tiny_pipeline(MODEL)


def test_folder(tiny_models):
    folder = tiny_models[MODEL]
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "HunyuanVideo15Pipeline"
    # diffusers maps HunyuanVideo15Pipeline to no modular class: the modular index names it.
    modular = json.loads((folder / "modular_model_index.json").read_text())
    assert modular["_class_name"] == "HunyuanVideo15ModularPipeline"
    assert modular["_blocks_class_name"] == "HunyuanVideo15AutoBlocks"
    assert (
        {name for name in modular if not name.startswith("_")}
        == set(COMPONENTS)
        == set(index)
        - {
            "_class_name",
            "_diffusers_version",
        }
    )
    guider = json.loads((folder / "guider" / "guider_config.json").read_text())
    assert (guider["_class_name"], guider["guidance_scale"]) == ("ClassifierFreeGuidance", 6.0)


def test_loads_as_modular_hunyuan_video15(pipe):
    assert type(pipe).__name__ == "HunyuanVideo15ModularPipeline"
    assert type(pipe.blocks).__name__ == "HunyuanVideo15AutoBlocks"
    assert list(pipe.blocks.sub_blocks) == ["text_encoder", "vae_encoder", "image_encoder", "denoise", "decode"]
    for name in COMPONENTS:
        assert getattr(pipe, name) is not None, name
    assert type(pipe.scheduler).__name__ == "FlowMatchEulerDiscreteScheduler"
    assert type(pipe.tokenizer_2).__name__ == "ByT5Tokenizer"
    assert pipe.transformer.dtype == torch.float32  # stored in float16, loaded as asked
    assert (pipe.vae_scale_factor_spatial, pipe.vae_scale_factor_temporal) == (16, 4)
    assert pipe.num_channels_latents == 32  # ComfyUI's HunyuanVideo15 latent format


def test_prompt_template_is_the_cut_108_tokens(pipe):
    """The pipeline drops the first 108 tokens of the chat template (the system prompt and the roles, in
    Qwen's real vocabulary): with this tokenizer too, what is left starts at the prompt."""
    start = pipe.prompt_template_encode_start_idx
    assert start == 108
    messages = [{"role": "system", "content": pipe.system_message}, {"role": "user", "content": PROMPT}]
    ids = pipe.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
    kept = pipe.tokenizer.decode(ids["input_ids"][start:])
    assert kept == f"{PROMPT}<|im_end|>\n<|im_start|>assistant\n"


def _text2video(pipe, seed: int, prompt: str = PROMPT) -> np.ndarray:
    return pipe(
        prompt=prompt,
        negative_prompt="blurry, low quality",
        num_inference_steps=2,  # as different after 2 steps as after 8
        height=HEIGHT,
        width=WIDTH,
        num_frames=FRAMES,
        generator=torch.Generator().manual_seed(seed),
        output_type="np",
        output="videos",
    )


def test_text2video(pipe, no_network):
    glyph_calls = []
    hook = pipe.text_encoder_2.register_forward_hook(lambda *args: glyph_calls.append(1))
    try:
        video = _text2video(pipe, 0)
    finally:
        hook.remove()
    assert len(glyph_calls) == 1  # ByT5 reads the quoted text of the prompt (not of the negative prompt: none)
    assert isinstance(video, np.ndarray)
    assert video.shape == (1, FRAMES, HEIGHT, WIDTH, 3)  # [batch, frames, height, width, channels]
    assert np.isfinite(video).all()
    assert video.min() >= 0.0 and video.max() <= 1.0
    assert video.std() > 0.1
    assert np.abs(video[0, 1:] - video[0, :-1]).mean() > 0.05  # the frames differ
    assert np.array_equal(video, _text2video(pipe, 0))
    assert np.abs(video - _text2video(pipe, 1)).mean() > 0.05
    assert np.abs(video - _text2video(pipe, 0, prompt="a cat sleeping on a red sofa")).mean() > 0.05
    # Another quoted text: four bytes of the prompt and of the glyph text differ.
    assert np.abs(video - _text2video(pipe, 0, prompt=PROMPT.replace("OPEN", "SHUT"))).mean() > 0.01
