"""The tiny, random-weight MiniMax Music 3 folder (text + lyrics to music) for tests and the offline demo.

MiniMax Music 3 exists in diffusers only as a Modular Diffusers pipeline (`MiniMaxMusic3ModularPipeline`,
default blocks `MiniMaxMusic3Blocks`): there is no classic pipeline class, so the folder is what the modular
pipeline's own `save_pretrained` writes: a modular_model_index.json (`_class_name`
MiniMaxMusic3ModularPipeline, `_blocks_class_name` MiniMaxMusic3Blocks, each component's class), which is how
`ModularPipeline.from_pretrained(folder)` finds the pipeline, and one subfolder per component: tokenizer/ (a
Qwen2 byte-level tokenizer built in memory with the prompt template's special tokens), language_model/
(Qwen3ForCausalLM), rvq_depth_decoder/, condition_encoder/, transformer/ (the flow-matching
MiniMaxMusic3Transformer1DModel), vocoder/ and scheduler/. The guider is made from the blocks' own config
(CFG 1.7). Safetensors weights, about 5 MiB, seeded: two builds with the same seed are byte-identical.

    python scripts/build_tiny.py tiny-minimax-music3 OUT_DIR [--seed N]

What follows the real model, and why:
- The language model's vocabulary: the blocks hard-code the token ids of the audio-end token (151670), the
  audio-CFG token (151654) and the first semantic code (151675), so the vocabulary must reach past 151675;
  it holds 256 semantic codes (the real model: 16384), 151931 tokens. Its embedding is the bulk of the
  folder (tied with the LM head, 8 wide). Its hidden size is also the depth decoder's (the blocks add the
  two models' embeddings) and the condition encoder's input width.
- Three codebooks (the real model: eight): the semantic code and two residual codes, so the depth decoder
  also feeds a residual code back (the real loop's path, which two codebooks would skip).
- The rates: the pipeline reads the frame rate (condition encoder: input_sampling_rate /
  input_hop_length), the latent hop (output_hop_length) and the sample rate (the vocoder's) from the
  configs. Here 5 frames a second (the real model: 25) because every autoregressive frame costs two
  top-k and a multinomial over the whole fixed vocabulary; 125 latents a second (hop 128, the vocoder's
  8x4x4 upsampling) and 16 kHz stereo (the real model: 86 and 44.1 kHz, from hop 512). A second of audio
  is 5 frames, 125 latents of 8 channels, 16000 samples. One 200-frame window (the blocks' fixed chunk)
  is 40 seconds, so short clips are one chunk and nothing is cropped.
- The scheduler follows the blocks' time convention: they pass sigmas 1 .. 1/n and give the transformer the
  scheduler's timesteps as flow-matching time in [0, 1] with 0 = noise (the overlap blending too), which is
  FlowMatchEulerDiscreteScheduler with num_train_timesteps=1 and invert_sigmas (timesteps 0 .. 1 - 1/n).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tiny_recipes import Model, Recipe, Scale, Scheduler

# The prompt template the tokenize block assembles, as the real tokenizer's added special tokens.
SPECIAL_TOKENS = (
    "<|im_start|>",
    "<|im_end|>",
    "<|caption_start|>",
    "<|caption_end|>",
    "<|lyrics_start|>",
    "<|lyrics_end|>",
    "<|audio_start|>",
)
AUDIO_END_TOKEN_ID = 151670  # hard-coded in diffusers' minimax_music3/encoders.py, as are the two below
FIRST_SEMANTIC_CODE_ID = 151675
SEMANTIC_CODES = 256
HIDDEN_SIZE = 8  # the language model's, the depth decoder's and the condition encoder's input width
NUM_CODEBOOKS = 3
LATENT_CHANNELS = 8  # the transformer's in_channels and the vocoder's latent_channels (two 4-channel streams)
CONDITION_DIM = 16
SAMPLE_RATE = 16000
UPSAMPLING = (8, 4, 4)  # the vocoder's; their product is the condition encoder's output_hop_length
FRAME_HOP = 4800  # at 24 kHz: 5 frames a second

# Random init lets neither the prompt nor the lyrics reach the audio. Found by trying (tests/tools/
# test_tiny_minimax_music3.py checks the result):
# - Qwen3's initializer_range of 0.02 leaves the attention outputs ~1e-4 of the token embeddings, so the
#   last position's hidden state (always <|audio_start|>) ignores the text before it; at 1.0 the frame
#   hidden states differ between prompts about as much as between seeds;
LM_INITIALIZER_RANGE = 1.0
# - the transformer then still hardly reads its condition (a different prompt changed the waveform by ~0.01
#   against ~0.1 for another seed): the condition encoder's projection, scaled, gives it about the weight of
#   the noisy latents (another prompt: ~0.09, another seed: ~0.13).
CONDITION_SCALE = 10.0
# - the random vocoder gives a quiet waveform (std ~0.04 around a DC offset of ~-0.26); its last conv
#   (weight-normed: its gain is `weight_g`), scaled, gives std ~0.2 with no sample clipped. (Prompt,
#   lyrics and seed then change the waveform by a mean of ~0.05, ~0.03 and ~0.09.)
VOCODER_OUT_SCALE = 6.0


@dataclass(frozen=True, kw_only=True)
class ZeroRow:
    """Zero one row of the parameter named `param` (a token's embedding)."""

    param: str
    row: int

    def apply(self, model: Any) -> None:
        model.get_parameter(self.param)[self.row].zero_()


def tokenizer():
    """A Qwen2 BPE tokenizer over the byte-level vocabulary (no merges: a token a byte) with the
    template's special tokens; no chat template (the blocks assemble the prompt themselves)."""
    from tiny_build import byte_level_vocab
    from transformers import Qwen2Tokenizer

    vocab = byte_level_vocab()
    for token in SPECIAL_TOKENS:
        vocab[token] = len(vocab)
    return Qwen2Tokenizer(
        vocab=vocab, merges=[], model_max_length=8192, additional_special_tokens=list(SPECIAL_TOKENS)
    )


def language_model_config(tokenizers: Mapping[str, Any]) -> dict:
    """The Qwen3 language model: the text tokens, the blocks' fixed special ids and the semantic codes."""
    vocab_size = FIRST_SEMANTIC_CODE_ID + SEMANTIC_CODES
    assert len(tokenizers["tokenizer"]) < AUDIO_END_TOKEN_ID
    return dict(
        vocab_size=vocab_size,
        hidden_size=HIDDEN_SIZE,
        intermediate_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=4,
        max_position_embeddings=16384,  # prompt (up to 5000 tokens) + frames
        tie_word_embeddings=True,
        initializer_range=LM_INITIALIZER_RANGE,
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=None,
    )


LANGUAGE_MODEL = Model(
    cls="transformers.Qwen3ForCausalLM",
    config_cls="transformers.Qwen3Config",
    seed=1,
    config=language_model_config,
    # The audio-end logit is then exactly 0: below the conditional top-50 threshold of 256 random
    # semantic logits (about half of them positive), so the random model never ends a clip early (with
    # its own random row it would, about one frame in 250; a clip ended at its first frame is an error).
    tweaks=(ZeroRow(param="model.embed_tokens.weight", row=AUDIO_END_TOKEN_ID),),
)
RVQ_DEPTH_DECODER = Model(
    cls="diffusers.MiniMaxMusic3RVQDepthDecoder",
    seed=2,
    config=dict(
        hidden_size=HIDDEN_SIZE,
        num_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        audio_vocab_size=64,
        num_codebooks=NUM_CODEBOOKS,
        max_position_embeddings=NUM_CODEBOOKS,  # a frame's depth sequence: hidden state + codes
    ),
)
CONDITION_ENCODER = Model(
    cls="diffusers.MiniMaxMusic3ConditionEncoder",
    seed=3,
    config=dict(
        condition_hidden_dim=HIDDEN_SIZE,
        num_condition_layers=NUM_CODEBOOKS,  # one hidden state per codebook step
        out_dim=CONDITION_DIM,
        input_sampling_rate=24000,
        input_hop_length=FRAME_HOP,
        output_sampling_rate=SAMPLE_RATE,
        output_hop_length=UPSAMPLING[0] * UPSAMPLING[1] * UPSAMPLING[2],
    ),
    tweaks=(Scale(params=r"proj\.(weight|bias)", factor=CONDITION_SCALE),),
)
TRANSFORMER = Model(
    cls="diffusers.MiniMaxMusic3Transformer1DModel",
    seed=4,
    config=dict(
        in_channels=LATENT_CHANNELS,
        condition_dim=CONDITION_DIM,
        num_layers=2,
        num_attention_heads=2,
        attention_head_dim=16,
        ff_inner_dim=32,
        rotary_dim=8,
        fourier_embedding_dim=16,
    ),
)
VOCODER = Model(
    cls="diffusers.MiniMaxMusic3Vocoder",
    seed=5,
    config=dict(
        latent_channels=LATENT_CHANNELS,
        decoder_input_dim=16,
        decoder_hidden_dim=16,  # halved by each upsampling block: 8, 4, 2 channels
        upsampling_ratios=UPSAMPLING,
        sampling_rate=SAMPLE_RATE,
    ),
    tweaks=(Scale(params=r"conv_out\.weight_g", factor=VOCODER_OUT_SCALE),),
)

MINIMAX_MUSIC3 = Recipe(
    kind="tiny-minimax-music3",
    summary="MiniMax Music 3 (modular only): Qwen3 LM + RVQ depth decoder, flow-matching 1D transformer, "
    "vocoder; 1 s of 16 kHz stereo",
    builder_version=1,
    modular_pipeline="MiniMaxMusic3ModularPipeline",
    tokenizers={"tokenizer": tokenizer},
    models={
        "language_model": LANGUAGE_MODEL,
        "rvq_depth_decoder": RVQ_DEPTH_DECODER,
        "condition_encoder": CONDITION_ENCODER,
        "transformer": TRANSFORMER,
        "vocoder": VOCODER,
    },
    scheduler=Scheduler(
        cls="diffusers.FlowMatchEulerDiscreteScheduler",
        config=dict(num_train_timesteps=1, shift=1.0, invert_sigmas=True),
    ),
)
