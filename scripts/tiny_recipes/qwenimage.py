"""The tiny, random-weight Qwen-Image and Qwen-Image-Edit diffusers folders, for tests.

tiny-qwenimage has the standard diffusers layout of `QwenImagePipeline`: model_index.json, transformer/
(QwenImageTransformer2DModel), vae/ (AutoencoderKLQwenImage), text_encoder/ (Qwen2_5_VLForConditionalGeneration,
a Qwen2.5-VL with a tiny text model and a tiny vision tower), tokenizer/ (a Qwen2 tokenizer built in memory),
scheduler/ (Qwen-Image's flow-match Euler). tiny-qwenimage-edit is the layout of `QwenImageEditPipeline`: the
same components with the same weights plus processor/ (a Qwen2VLProcessor: Qwen2-VL's image processor and the
same tokenizer). Safetensors weights, a few MiB in all; they load with `ModularPipeline.from_pretrained(folder)`
(QwenImageModularPipeline with QwenImageAutoBlocks, QwenImageEditModularPipeline with QwenImageEditAutoBlocks)
without any network access. The weights are random but seeded: two builds with the same seed are
byte-identical. Nothing is downloaded.

    python scripts/build_tiny.py tiny-qwenimage OUT_DIR [--seed N]
    python scripts/build_tiny.py tiny-qwenimage-edit OUT_DIR [--seed N]

The shapes follow Qwen-Image where the pipeline depends on them:
- the VAE downsamples by 8 (three downsampling stages: the pipeline's `vae_scale_factor` is
  2 ** len(temperal_downsample)) into 16 latent channels (the VAE's `latents_mean`/`latents_std` have 16
  entries), and the transformer packs latents 2x2 (in_channels 64); the blocks' image processors are
  hard-coded for 16-pixel steps. 64x64 images are 8x8 latents, 16 image tokens;
- the prompt template's first 34 tokens (QWENIMAGE_PROMPT_TEMPLATE_START_IDX; 64 for Edit) are dropped
  from the text embeddings: the tokenizer makes every word of the templates one token
  (`tiny_build.qwen_tokenizer(whole_words=...)`), as Qwen's own vocabulary does, so exactly the template's
  system prompt is dropped and the prompt's tokens are what is left;
- the text model's multimodal rotary sections (`mrope_section`) sum to half its head dim, as in Qwen2.5-VL;
- the vision tower's patch (14), temporal patch (2) and merge (2) sizes are the image processor's, whose
  patches it embeds, and it projects to the text model's width; Edit's `<|image_pad|>` and vision tokens
  are the tokenizer's special tokens, whose ids the text encoder's config names.

What does not follow from the folder: Edit's resize step (QwenImageEditResizeStep) resizes every input
image to a 1024x1024 area (`calculate_dimensions(1024 * 1024, ...)`, hard-coded) before both encoders, so
an Edit run encodes a 1-megapixel image and attends over its 4096 latent tokens whatever the input and
output sizes: ~4 s a run here (2.5 s of it the VAE encoder), against ~0.3 s for text2image at 64x64.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from tiny_build import QWEN_CHAT_SPECIAL_TOKENS, qwen_tokenizer

from tiny_recipes import Model, PinPosterior, Recipe, Scale, Scheduler

TEXT_HIDDEN_SIZE = 32  # the text model's width: the transformer's joint_attention_dim
TEXT_HEAD_DIM = 16
LATENT_CHANNELS = 16

# Qwen2.5-VL's vision special tokens (Edit's template holds <|vision_start|><|image_pad|><|vision_end|>).
VISION_TOKENS = ("<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>")
SPECIAL_TOKENS = (*QWEN_CHAT_SPECIAL_TOKENS, *VISION_TOKENS)


def prompt_templates() -> tuple[str, ...]:
    """The templates Qwen-Image's text encoder steps put the prompt into (their words become whole tokens)."""
    from diffusers.modular_pipelines.qwenimage import prompt_templates

    return (prompt_templates.QWENIMAGE_PROMPT_TEMPLATE, prompt_templates.QWENIMAGE_EDIT_PROMPT_TEMPLATE)


def tokenizer() -> Any:
    """Qwen2 byte-level BPE with Qwen's chat and vision special tokens; the templates' words are one token each."""
    # long enough for Edit's prompts, which hold the image's tokens too
    return qwen_tokenizer(model_max_length=32768, special_tokens=SPECIAL_TOKENS, whole_words=prompt_templates())


# The image processor's largest image, in pixels. Edit's resize step hard-codes a 1024x1024 area for every
# input image (QwenImageEditResizeStep), which Qwen2-VL's processor would give the vision tower as ~1300
# tokens (its default, ~1 MP): most of the prompt, and slow. At 128x128 (8x8 patches, 16 tokens once merged
# 2x2) the vision tower still sees the image, in as many tokens as a short prompt.
PROCESSOR_MAX_PIXELS = 128 * 128


def processor() -> Any:
    """Qwen2-VL's processor as Qwen-Image-Edit ships it (14-pixel patches merged 2x2), its largest image
    PROCESSOR_MAX_PIXELS, over the recipe's tokenizer."""
    from transformers import Qwen2VLImageProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor

    size = {"shortest_edge": 56 * 56, "longest_edge": PROCESSOR_MAX_PIXELS}
    return Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(size=size),
        tokenizer=tokenizer(),
        video_processor=Qwen2VLVideoProcessor(),
    )


def text_encoder_config(tokenizers: Mapping[str, Any]) -> dict:
    """A tiny Qwen2.5-VL: a 2-layer text model and a 1-block vision tower over the recipe's tokenizer."""
    tok = tokenizers["tokenizer"]
    token_ids = {token: tok.convert_tokens_to_ids(token) for token in VISION_TOKENS}
    return dict(
        text_config=dict(
            vocab_size=len(tok),
            hidden_size=TEXT_HIDDEN_SIZE,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=TEXT_HEAD_DIM,
            max_position_embeddings=2048,
            # temporal, height and width sections of the rotary frequencies: TEXT_HEAD_DIM / 2 in all
            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [2, 3, 3]},
            bos_token_id=None,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        ),
        vision_config=dict(
            depth=1,
            hidden_size=16,
            intermediate_size=32,
            num_heads=2,
            patch_size=14,
            temporal_patch_size=2,
            spatial_merge_size=2,
            window_size=112,
            fullatt_block_indexes=[0],
            out_hidden_size=TEXT_HIDDEN_SIZE,
        ),
        image_token_id=token_ids["<|image_pad|>"],
        video_token_id=token_ids["<|video_pad|>"],
        vision_start_token_id=token_ids["<|vision_start|>"],
        vision_end_token_id=token_ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )


TEXT_ENCODER = Model(
    cls="transformers.Qwen2_5_VLForConditionalGeneration",
    config_cls="transformers.Qwen2_5_VLConfig",
    seed=1,
    config=text_encoder_config,
)

# Random init gives a transformer whose velocity hardly depends on the prompt (two prompts' 64x64 images
# differ by ~0.004 on a 0..1 scale): the prompt's tokens reach the image tokens only through the joint
# attention, which is near-uniform over the image and text tokens, and its output is gated by a small random
# AdaLN gate. And the random decoder gives low-contrast grey. These factors, found by trying
# (tests/tools/test_tiny_qwenimage.py checks the result), make prompts and seeds give visibly different
# images (mean pixel difference ~0.1):
# - the RMSNorm weights of the joint attention's queries and keys (image and text), so attention is sharp;
TRANSFORMER_QK_NORM_SCALE = 4.0
# - the text tokens' attention values, so what the image tokens pick out of the prompt moves them;
TRANSFORMER_TEXT_VALUE_SCALE = 4.0
# - the image stream's attention output projection, against the small gate;
TRANSFORMER_ATTN_OUT_SCALE = 4.0
# - the output projection (the predicted velocity itself);
TRANSFORMER_PROJ_OUT_SCALE = 3.0
# - the decoder's last conv, for contrast (under 1% of the pixels clip at 0 or 1).
VAE_DECODER_OUT_SCALE = 2.0
# The random VAE encoder gives latent means of std ~0.15, next to Qwen's latents_std of 1.1-3.3 that
# normalize them: an encoded image (inpainting's, Edit's) would be a near-constant latent. Scale the mean
# rows of its quant_conv (the posterior's moments) to a normalized latent std of ~1, and pin the
# log-variance low (the blocks take the posterior's mode; sampled latents stay close to it).
VAE_LATENT_MEAN_SCALE = 12.0
VAE_LOGVAR = -12.0

TRANSFORMER = Model(
    cls="diffusers.QwenImageTransformer2DModel",
    seed=2,
    config=dict(
        patch_size=2,
        in_channels=LATENT_CHANNELS * 4,
        out_channels=LATENT_CHANNELS,
        num_layers=2,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=TEXT_HIDDEN_SIZE,
        axes_dims_rope=(4, 6, 6),  # frame, row, column: sums to the head dim
    ),
    tweaks=(
        Scale(params=r"transformer_blocks\.\d+\.attn\.norm_(added_)?[qk]\.weight", factor=TRANSFORMER_QK_NORM_SCALE),
        Scale(params=r"transformer_blocks\.\d+\.attn\.add_v_proj\.(weight|bias)", factor=TRANSFORMER_TEXT_VALUE_SCALE),
        Scale(params=r"transformer_blocks\.\d+\.attn\.to_out\.0\.(weight|bias)", factor=TRANSFORMER_ATTN_OUT_SCALE),
        Scale(params=r"proj_out\.(weight|bias)", factor=TRANSFORMER_PROJ_OUT_SCALE),
    ),
)

VAE = Model(
    cls="diffusers.AutoencoderKLQwenImage",
    seed=3,
    config=dict(
        base_dim=8,
        z_dim=LATENT_CHANNELS,
        dim_mult=[1, 2, 2, 2],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    ),
    tweaks=(
        PinPosterior(conv="quant_conv", mean_scale=VAE_LATENT_MEAN_SCALE, logvar=VAE_LOGVAR),
        Scale(params=r"decoder\.conv_out\.(weight|bias)", factor=VAE_DECODER_OUT_SCALE),
    ),
)

# Qwen-Image's scheduler config: resolution-dependent (exponential) shift, stretched to end at 0.02.
SCHEDULER = Scheduler(
    cls="diffusers.FlowMatchEulerDiscreteScheduler",
    config=dict(
        num_train_timesteps=1000,
        shift=1.0,
        use_dynamic_shifting=True,
        base_shift=0.5,
        max_shift=0.9,
        base_image_seq_len=256,
        max_image_seq_len=8192,
        shift_terminal=0.02,
        time_shift_type="exponential",
    ),
)

QWENIMAGE = Recipe(
    kind="tiny-qwenimage",
    summary="Qwen-Image: Qwen2.5-VL text encoder, 2x2-packed transformer, Qwen VAE; text2image, inpainting at 64x64",
    builder_version=1,
    pipeline="diffusers.QwenImagePipeline",
    tokenizers={"tokenizer": tokenizer},
    models={"text_encoder": TEXT_ENCODER, "transformer": TRANSFORMER, "vae": VAE},
    scheduler=SCHEDULER,
)

QWENIMAGE_EDIT = replace(
    QWENIMAGE,
    kind="tiny-qwenimage-edit",
    summary="Qwen-Image-Edit: tiny-qwenimage's weights plus a Qwen2-VL processor; image_conditioned editing",
    pipeline="diffusers.QwenImageEditPipeline",
    tokenizers={"tokenizer": tokenizer, "processor": processor},
)
