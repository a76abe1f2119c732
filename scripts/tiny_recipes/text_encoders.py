"""Tiny text encoders that several families share, as recipe models over the in-memory tokenizers of
scripts/tiny_build.py (CLIP over `clip_tokenizer()`, T5 and UMT5 over `t5_tokenizer()`)."""

from __future__ import annotations

from tiny_build import clip_text_config, t5_encoder_config

from tiny_recipes import Model


def clip(*, seed: int, hidden_size: int = 32, with_projection: bool = False) -> Model:
    """A CLIP text tower (CLIPTextModelWithProjection, whose pooled output is projected, when
    `with_projection`; SDXL's text_encoder_2)."""
    return Model(
        cls="transformers.CLIPTextModelWithProjection" if with_projection else "transformers.CLIPTextModel",
        config_cls="transformers.CLIPTextConfig",
        seed=seed,
        config=lambda tokenizers: clip_text_config(hidden_size),
    )


def t5(*, seed: int, tokenizer: str, d_model: int, umt5: bool = False) -> Model:
    """A T5 encoder (UMT5's when `umt5`, as in Wan) over the recipe's tokenizer named `tokenizer`."""
    prefix = "transformers.UMT5" if umt5 else "transformers.T5"
    return Model(
        cls=f"{prefix}EncoderModel",
        config_cls=f"{prefix}Config",
        seed=seed,
        config=lambda tokenizers: t5_encoder_config(tokenizers[tokenizer], d_model),
    )
