"""The tiny random-weight Qwen-Image folder (scripts/tiny_recipes/qwenimage.py) loads offline as diffusers'
Qwen-Image Modular Diffusers pipeline that runs text2image and inpainting at 64x64, with visibly different
images for other prompts and seeds; its tokenizer makes Qwen-Image's prompt template exactly as many tokens
as the template's start index says, so the text embeddings hold the prompt and nothing of the template. What
every build does (determinism, idempotence, marker) is in test_tiny_build.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from diffusers.modular_pipelines.qwenimage import prompt_templates
from PIL import Image

MODEL = "tiny-qwenimage"
EDIT_MODEL = "tiny-qwenimage-edit"
PROMPT = "a photo of a red fox in the snow"


@pytest.fixture(scope="module")
def pipe(tiny_pipeline):
    return tiny_pipeline(MODEL)


def test_folder(tiny_models):
    index = json.loads((tiny_models[MODEL] / "model_index.json").read_text())
    assert index["_class_name"] == "QwenImagePipeline"
    assert index["text_encoder"] == ["transformers", "Qwen2_5_VLForConditionalGeneration"]


def test_loads_as_modular_qwenimage(pipe):
    assert type(pipe).__name__ == "QwenImageModularPipeline"
    assert type(pipe.blocks).__name__ == "QwenImageAutoBlocks"
    for name in ("transformer", "vae", "text_encoder", "tokenizer", "scheduler", "guider"):
        assert getattr(pipe, name) is not None, name
    assert pipe.transformer.dtype == torch.float32
    assert pipe.vae_scale_factor == 8 and pipe.num_channels_latents == 16


@pytest.mark.parametrize(
    ("template", "start"),
    [
        (prompt_templates.QWENIMAGE_PROMPT_TEMPLATE, prompt_templates.QWENIMAGE_PROMPT_TEMPLATE_START_IDX),
        (prompt_templates.QWENIMAGE_EDIT_PROMPT_TEMPLATE, prompt_templates.QWENIMAGE_EDIT_PROMPT_TEMPLATE_START_IDX),
    ],
    ids=["text2image", "edit"],
)
def test_the_template_start_index_drops_exactly_the_system_prompt(pipe, template, start):
    """Qwen-Image drops the first `start` tokens of the templated prompt: the system prompt up to the
    user turn, in Qwen's own vocabulary. The tiny tokenizer tokenizes it into exactly as many."""
    system = template[: template.index("<|im_start|>user\n") + len("<|im_start|>user\n")]
    assert len(pipe.tokenizer(system).input_ids) == start


def test_prompt_embeds_hold_the_prompt(pipe):
    embeds = pipe(prompt=PROMPT, height=64, width=64, num_inference_steps=1, output="prompt_embeds")
    templated = pipe.tokenizer(prompt_templates.QWENIMAGE_PROMPT_TEMPLATE.format(PROMPT)).input_ids
    start = prompt_templates.QWENIMAGE_PROMPT_TEMPLATE_START_IDX
    assert embeds.shape == (1, len(templated) - start, 32)
    assert pipe.tokenizer.decode(templated[start:]).startswith(PROMPT + "<|im_end|>")


def _text2image(pipe, seed: int, prompt: str = PROMPT) -> np.ndarray:
    images = pipe(
        prompt=prompt,
        num_inference_steps=8,
        height=64,
        width=64,
        generator=torch.Generator().manual_seed(seed),
        output_type="np",
        output="images",
    )
    return np.asarray(images)


def test_text2image(pipe, no_network):
    images = _text2image(pipe, 0)
    assert images.shape == (1, 64, 64, 3)
    assert np.isfinite(images).all()
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert images.std() > 0.1
    assert np.array_equal(images, _text2image(pipe, 0))
    assert np.abs(images - _text2image(pipe, 1)).mean() > 0.07
    assert np.abs(images - _text2image(pipe, 0, prompt="a blue car on a city road")).mean() > 0.05


IMAGE = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))


def _square_mask(value: int) -> Image.Image:
    """Black (keep) with a white (repaint) 32x32 square in the middle, or all `value` where `value` < 0."""
    mask = np.zeros((64, 64), np.uint8)
    mask[16:48, 16:48] = 255
    return Image.fromarray(mask if value < 0 else np.full_like(mask, value), "L")


def _inpaint(pipe, seed: int, mask: Image.Image, output: str = "images"):
    # Qwen-Image's inpainting decoder accepts only output_type="pil" (its mask-overlay check in 0.42.1).
    return pipe(
        prompt=PROMPT,
        image=IMAGE,
        mask_image=mask,
        height=64,
        width=64,
        strength=0.9,
        num_inference_steps=8,
        generator=torch.Generator().manual_seed(seed),
        output_type="pil",
        output=output,
    )


def normalized(pipe, latents: torch.Tensor) -> torch.Tensor:
    """The decoder step leaves the VAE's latents in the state (`latents_std` and `latents_mean` applied):
    back in the loop's normalized space, packed as the loop has them [B, 2x2 patches, 4 x channels]."""
    config = pipe.vae.config
    mean, std = (torch.tensor(values).view(1, -1, 1, 1, 1) for values in (config.latents_mean, config.latents_std))
    return pipe.pachifier.pack_latents((latents - mean) / std)


def test_inpainting_repaints_the_white_of_the_mask(pipe, no_network):
    """diffusers' polarity: white is repainted, black kept. The final latents outside the square are the
    image's own latents, whatever the seed; inside they are new. (In pixels the tiny VAE's decoder mixes
    all of its 8x8 latents, so the latents tell it apart.) An all-black mask repaints nothing."""
    square = _square_mask(-1)
    runs = [_inpaint(pipe, seed, square, output=["latents", "image_latents", "mask"]) for seed in (0, 1)]
    finals = [normalized(pipe, run["latents"]) for run in runs]
    for final, run in zip(finals, runs, strict=True):
        mask, image_latents = run["mask"], run["image_latents"]
        assert set(mask.unique().tolist()) == {0.0, 1.0}
        assert mask.mean() == 0.25  # the square's 2x2 of the 4x4 patches
        assert torch.allclose(final[mask == 0], image_latents[mask == 0], atol=1e-5)
        assert (final[mask == 1] - image_latents[mask == 1]).abs().mean() > 0.1
    inside = runs[0]["mask"] == 1
    assert (finals[0][inside] - finals[1][inside]).abs().mean() > 0.1
    images = [np.asarray(_inpaint(pipe, seed, square)[0]) for seed in (0, 1)]
    assert images[0].shape == (64, 64, 3)
    assert np.abs(images[0].astype(int) - images[1].astype(int)).mean() > 10
    kept = [np.asarray(_inpaint(pipe, seed, _square_mask(0))[0]) for seed in (0, 1)]
    assert np.array_equal(kept[0], kept[1])


# -- Qwen-Image-Edit (tiny-qwenimage-edit) -----------------------------------------------------------


@pytest.fixture(scope="module")
def edit_pipe(tiny_pipeline):
    return tiny_pipeline(EDIT_MODEL)


def test_edit_loads_as_modular_qwenimage_edit_with_the_same_weights(edit_pipe, pipe):
    assert type(edit_pipe).__name__ == "QwenImageEditModularPipeline"
    assert type(edit_pipe.blocks).__name__ == "QwenImageEditAutoBlocks"
    assert type(edit_pipe.processor).__name__ == "Qwen2VLProcessor"
    for name in ("transformer", "vae", "text_encoder"):
        ours, theirs = getattr(edit_pipe, name).state_dict(), getattr(pipe, name).state_dict()
        assert all(torch.equal(ours[key], theirs[key]) for key in theirs), name


def test_edit_encodes_the_image_with_the_prompt(edit_pipe, no_network):
    """Edit's text encoder stage: the image, resized to the 1024x1024 area its resize step hard-codes, goes
    through the processor and the vision tower; the template's first 64 tokens (its system prompt) are
    dropped, so the embeddings start at <|vision_start|> and hold the image's tokens and the prompt."""
    stage = edit_pipe.blocks.sub_blocks["text_encoder"].init_pipeline()
    stage.update_components(**{name: getattr(edit_pipe, name) for name in ("text_encoder", "processor")})
    out = stage(prompt="make it a watercolor painting", image=IMAGE, output=["prompt_embeds", "resized_image"])
    (resized,) = out["resized_image"]
    assert resized.size == (1024, 1024)
    template = prompt_templates.QWENIMAGE_EDIT_PROMPT_TEMPLATE.format("make it a watercolor painting")
    ids = edit_pipe.processor(text=[template], images=[resized], return_tensors="pt").input_ids[0]
    start = prompt_templates.QWENIMAGE_EDIT_PROMPT_TEMPLATE_START_IDX
    assert edit_pipe.processor.tokenizer.convert_ids_to_tokens(int(ids[start])) == "<|vision_start|>"
    assert out["prompt_embeds"].shape == (1, len(ids) - start, 32)
