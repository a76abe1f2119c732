"""The tiny, random-weight, HunyuanVideo 1.5 text-to-video diffusers folder, for tests.

The tiny-hunyuan-video15 folder has the standard diffusers layout of `HunyuanVideo15Pipeline` (the
480p T2V checkpoints): model_index.json, transformer/ (HunyuanVideo15Transformer3DModel), vae/
(AutoencoderKLHunyuanVideo15), text_encoder/ (Qwen2_5_VLTextModel, the language half of Qwen2.5-VL),
tokenizer/ (a Qwen2 BPE tokenizer with a chat template, built in memory), text_encoder_2/ (T5EncoderModel,
the ByT5 glyph encoder that reads the "quoted" text of a prompt), tokenizer_2/ (ByT5Tokenizer: bytes, no
vocabulary file), scheduler/ (FlowMatchEulerDiscreteScheduler) and guider/ (ClassifierFreeGuidance);
safetensors weights, 13.5 MiB in all (see TRANSFORMER), a modular_model_index.json beside model_index.json
(diffusers maps HunyuanVideo15Pipeline to no modular class). It loads with
`ModularPipeline.from_pretrained(folder)` (HunyuanVideo15ModularPipeline with HunyuanVideo15AutoBlocks)
without any network access. The weights are random but seeded: two builds with the same seed are
byte-identical. Nothing is downloaded.

    python scripts/build_tiny.py tiny-hunyuan-video15 OUT_DIR [--seed N]

The shapes follow HunyuanVideo 1.5 where the pipeline depends on them: a 32-channel latent (ComfyUI's
`HunyuanVideo15` latent format has 32 preview factors) from a VAE that compresses 16x in space and 4x in
time, so 5 frames of 64x64 pixels are 2 latent frames of 4x4 (heights and widths must be multiples of 16,
`num_frames - 1` a multiple of 4); a transformer with 1x1x1 patches whose input is the latents, the
image-condition latents and a mask (32 + 32 + 1 = 65 channels), whose text widths are the two text
encoders' hidden sizes, and the scheduler (shift 5) and guider (CFG 6) of the 480p T2V checkpoint.

What the modular pipeline hard-codes, whatever the folder says (HunyuanVideo15ModularPipeline's properties):
1108 Qwen tokens, of which the first 108 (the chat template's system prompt, in Qwen's real vocabulary) are
cut, 256 ByT5 tokens and 729 zero image tokens (SigLIP's 27x27 grid, masked off in text-to-video). So the one
joint block attends over 1985 text tokens beside the 32 video tokens of a 64x64 clip, and ByT5's projection
(2048 wide in the transformer's code) runs over 256 tokens: a step is two transformer calls of ~60 ms on one
thread (~20 ms the projection, ~30 ms the joint attention and its 2017x2017 masks), an 8-step 64x64 video
~1 s. The tokenizer has whole-word tokens for the template, so the cut is exactly the template here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tiny_build import qwen_tokenizer

from tiny_recipes import Model, Recipe, Scale, Scheduler, text_encoders

LATENT_CHANNELS = 32  # the VAE's latent_channels, as in HunyuanVideo 1.5
TEXT_HIDDEN = 32  # the Qwen2.5-VL text model's hidden size (the transformer's text_embed_dim)
GLYPH_HIDDEN = 32  # the ByT5 encoder's d_model (the transformer's text_embed_2_dim)
IMAGE_EMBED = 16  # SigLIP's width (the transformer's image_embed_dim): zero image tokens in text-to-video

# Random init gives a transformer whose velocity hardly depends on the prompt (a 64x64 video changes by
# ~0.02 between prompts, by ~0.0001 for another quoted text) and a low-contrast decoder. In the one joint
# block the prompt reaches the video tokens only through the attention values of the text tokens; the glyph
# tokens come out of ByT5's projection (a 2048-wide 3-layer MLP that shrinks them) much weaker than the Qwen
# tokens. These factors, found by trying (tests/tools/test_tiny_hunyuan_video1_5.py checks the result), make
# prompts, quoted texts and seeds give visibly different videos (mean pixel differences ~0.1, ~0.03, ~0.2):
# - the text tokens' attention values, so what the video tokens attend to in the prompt moves them;
TRANSFORMER_TEXT_VALUE_SCALE = 8.0
# - the ByT5 projection's output, so the glyph tokens weigh like the prompt's;
TRANSFORMER_GLYPH_SCALE = 32.0
# - the output projection (the predicted velocity itself);
TRANSFORMER_PROJ_OUT_SCALE = 3.0
# - the decoder's last conv, for contrast (~5% of the pixels clip at 0 or 1);
VAE_DECODER_OUT_SCALE = 1.5
# - and its upsamplers (see `SmoothSubpixels`), so the frames survive H.264's 4:2:0 chroma in a saved video.
VAE_UPSAMPLER_SCALE = 16.0


@dataclass(frozen=True, kw_only=True)
class SmoothSubpixels:
    """Make the decoder's upsamplers upsample like nearest-neighbour, as a trained one roughly does. Each packs
    the 2x2 sub-pixels of its output (and 2 frames, when it also upsamples in time) in its conv's output
    channels and shuffles them into place; random filters give every sub-pixel its own, so a 64x64 frame is
    noise at the pixel scale, which H.264 with 4:2:0 chroma (ComfyUI's Save Video) cannot keep (frames
    correlate ~0.6 with their PNGs). Here the four sub-pixels of each output pixel share the first one's
    filters, scaled by `factor` so they outweigh the upsampler's shortcut (itself a plain pixel shuffle)."""

    factor: float

    def apply(self, model: Any) -> None:
        upsamplers = [module for module in model.decoder.modules() if hasattr(module, "add_temporal_upsample")]
        if not upsamplers:
            raise ValueError(f"{type(model).__name__} has no sub-pixel upsamplers")
        for upsampler in upsamplers:
            conv = upsampler.conv.conv
            frames = 2 if upsampler.add_temporal_upsample else 1
            weight = conv.weight.view(frames, 4, -1, *conv.weight.shape[1:])
            bias = conv.bias.view(frames, 4, -1)
            weight.copy_((weight[:, :1] * self.factor).expand_as(weight))
            bias.copy_((bias[:, :1] * self.factor).expand_as(bias))


def tokenizer():
    """The Qwen2 tokenizer with whole-word tokens for the prompt template (the system prompt, the roles),
    as Qwen's real vocabulary has: the template before the prompt is then the 108 tokens the pipeline cuts
    (`prompt_template_encode_start_idx`), so the prompt embeddings start at the prompt, as in the real
    model. (Byte by byte the template is ~600 tokens, most of which would stay in front of every prompt.)"""
    from diffusers.modular_pipelines.hunyuan_video1_5.modular_pipeline import HunyuanVideo15ModularPipeline

    system_message = HunyuanVideo15ModularPipeline.system_message.fget(None)
    return qwen_tokenizer(whole_words=(f"system\n{system_message}", "user\n", "assistant\n"))


def byt5_tokenizer():
    """ByT5's tokenizer: UTF-8 bytes plus 3 specials and 125 extra ids (384 ids, as google/byt5-small);
    built from nothing."""
    from transformers import ByT5Tokenizer

    return ByT5Tokenizer()


def text_encoder_config(tokenizers: Mapping[str, Any]) -> dict:
    """A tiny Qwen2.5-VL text model over the recipe's tokenizer."""
    tokenizer = tokenizers["tokenizer"]
    return dict(
        vocab_size=len(tokenizer),
        hidden_size=TEXT_HIDDEN,
        intermediate_size=64,
        # The pipeline takes hidden_states[-3]: with 3 layers that is the first layer's output.
        num_hidden_layers=3,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=2048,
        # Qwen2.5-VL's multimodal RoPE: the head's 8 frequency pairs split over time, height and width
        # as the real 64 are (16, 24, 24); text positions are the same on all three.
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [2, 3, 3]},
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )


TRANSFORMER = Model(
    cls="diffusers.HunyuanVideo15Transformer3DModel",
    seed=2,
    config=dict(
        in_channels=2 * LATENT_CHANNELS + 1,
        out_channels=LATENT_CHANNELS,
        num_attention_heads=2,
        attention_head_dim=8,
        num_layers=1,
        num_refiner_layers=1,
        mlp_ratio=2.0,
        patch_size=1,
        patch_size_t=1,
        text_embed_dim=TEXT_HIDDEN,
        text_embed_2_dim=GLYPH_HIDDEN,
        image_embed_dim=IMAGE_EMBED,
        rope_axes_dim=(2, 2, 4),  # sums to the head dim, as (16, 56, 56) does to 128
        # The pixel size the pipeline picks when height and width are not given (480 in the 480p model).
        target_size=64,
        task_type="t2v",
        use_meanflow=False,
    ),
    tweaks=(
        Scale(params=r"transformer_blocks\.\d+\.attn\.add_v_proj\.(weight|bias)", factor=TRANSFORMER_TEXT_VALUE_SCALE),
        Scale(params=r"context_embedder_2\.linear_3\.(weight|bias)", factor=TRANSFORMER_GLYPH_SCALE),
        Scale(params=r"proj_out\.(weight|bias)", factor=TRANSFORMER_PROJ_OUT_SCALE),
    ),
    # ByT5's projection is 2048 wide whatever the config (4.2 M of the 4.3 M parameters), so the folder
    # cannot be a few MiB: the weights are stored in float16 (8.5 MiB; loaded in the dtype asked for).
    dtype="float16",
)

VAE = Model(
    cls="diffusers.AutoencoderKLHunyuanVideo15",
    seed=3,
    config=dict(
        latent_channels=LATENT_CHANNELS,
        # Five blocks for four 2x spatial steps, as (128, 256, 512, 1024, 1024); the last width must be a
        # multiple of twice the latent channels (the encoder's shortcut averages groups of channels).
        block_out_channels=(4, 8, 16, 32, 64),
        layers_per_block=1,
        spatial_compression_ratio=16,
        temporal_compression_ratio=4,
        scaling_factor=1.03682,
    ),
    tweaks=(
        Scale(params=r"decoder\.conv_out\.conv\.(weight|bias)", factor=VAE_DECODER_OUT_SCALE),
        SmoothSubpixels(factor=VAE_UPSAMPLER_SCALE),
    ),
    dtype="float16",
)

HUNYUAN_VIDEO15 = Recipe(
    kind="tiny-hunyuan-video15",
    summary="HunyuanVideo 1.5 T2V: Qwen2.5-VL text + ByT5 glyph encoders, 16x VAE, CFG 6; 5-frame 64x64 videos",
    builder_version=1,
    pipeline="diffusers.HunyuanVideo15Pipeline",
    tokenizers={"tokenizer": tokenizer, "tokenizer_2": byt5_tokenizer},
    models={
        "text_encoder": Model(
            cls="transformers.Qwen2_5_VLTextModel",
            config_cls="transformers.Qwen2_5_VLTextConfig",
            seed=1,
            config=text_encoder_config,
        ),
        "text_encoder_2": text_encoders.t5(seed=4, tokenizer="tokenizer_2", d_model=GLYPH_HIDDEN),
        "transformer": TRANSFORMER,
        "vae": VAE,
    },
    # The 480p T2V checkpoint's: flow-match Euler with a fixed shift of 5 (the blocks pass their own
    # linear sigmas, which the shift bends).
    scheduler=Scheduler(
        cls="diffusers.FlowMatchEulerDiscreteScheduler",
        config=dict(num_train_timesteps=1000, shift=5.0, use_dynamic_shifting=False),
    ),
    configs={"guider": Scheduler(cls="diffusers.ClassifierFreeGuidance", config=dict(guidance_scale=6.0))},
    # HunyuanVideo15Pipeline is in none of diffusers' auto-pipeline tables, so ModularPipeline.from_pretrained
    # cannot find the modular class from model_index.json alone.
    modular_pipeline="HunyuanVideo15ModularPipeline",
)
