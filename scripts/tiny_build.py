"""The shared part of every tiny-model build: a seeded, offline, byte-identical build written to a staging
folder and renamed into place, with a marker file that makes a second call return at once, plus the
in-memory tokenizers and the tiny text-encoder configs the recipes (scripts/tiny_recipes/) use.

A caller supplies `write(target, seed)`, which constructs its seeded random components and
`save_pretrained`s them into `target` (for the tiny models, `Recipe.write`; scripts/build_vega_sdxl.py has its
own); `build_folder` does the rest. Nothing here downloads.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

logger = logging.getLogger("tiny_build")

MARKER = "tiny_model.json"


def read_marker(out_dir: Path) -> dict | None:
    try:
        return json.loads((out_dir / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_complete(out_dir: Path, seed: int, builder_version: int, kind: str | None) -> bool:
    """True when `out_dir` holds a complete build of this builder version and seed whose marker records
    `kind` (None: a marker without a kind, as the SDXL one is)."""
    marker = read_marker(out_dir)
    if not isinstance(marker, dict):
        return False
    if marker.get("builder_version") != builder_version or marker.get("seed") != seed:
        return False
    if marker.get("kind") != kind:
        return False
    files = marker.get("files")
    if not isinstance(files, dict) or not files:
        return False
    for rel, size in files.items():
        path = out_dir / rel
        if not path.is_file() or path.stat().st_size != size:
            return False
    return True


def file_hashes(root: Path) -> dict[str, str]:
    """The sha256 of every file under `root`, by its POSIX path relative to `root`."""
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def normalize_permissions(root: Path) -> None:
    # mkdtemp makes a 0700 folder and some savers write 0600 files; make the result readable like
    # any other checkout folder.
    os.chmod(root, 0o755)
    for path in root.rglob("*"):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)


def drop_empty_index_entries(target: Path) -> None:
    """`[null, null]` entries of model_index.json (absent optional components) make
    ModularPipeline.load_components() log a long warning with a traceback; leave them out."""
    index_path = target / "model_index.json"
    index = json.loads(index_path.read_text(encoding="utf-8"))
    index = {key: value for key, value in index.items() if value != [None, None]}
    index_path.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_modular_index(target: Path, modular_pipeline: str) -> None:
    """Write modular_model_index.json beside model_index.json: the modular pipeline class (e.g.
    "HunyuanVideo15ModularPipeline"), its default blocks and every component of model_index.json in its
    subfolder here. `ModularPipeline.from_pretrained` maps a model_index.json to a modular class only for
    pipelines in diffusers' auto-pipeline tables; for the others this index is how it finds the class.
    Component paths are left out (null): diffusers loads components whose files are in the folder from it."""
    import diffusers

    index = json.loads((target / "model_index.json").read_text(encoding="utf-8"))
    modular = {
        "_blocks_class_name": getattr(diffusers, modular_pipeline).default_blocks_name,
        "_class_name": modular_pipeline,
        "_diffusers_version": index["_diffusers_version"],
    }
    for name, value in index.items():
        if not name.startswith("_") and isinstance(value, list) and len(value) == 2:
            spec = {"pretrained_model_name_or_path": None, "revision": None, "subfolder": name, "variant": None}
            modular[name] = [None, None, {**spec, "type_hint": value}]
    text = json.dumps(modular, indent=2, sort_keys=True) + "\n"
    (target / "modular_model_index.json").write_text(text, encoding="utf-8")


def build_folder(
    out_dir: Path,
    seed: int,
    *,
    kind: str,
    builder_version: int,
    write: Callable[[Path, int], None],
    record_kind: bool = True,
) -> Path:
    """Write a tiny model folder to `out_dir` (or keep it, when already built) and return its path. The
    marker records `kind` unless `record_kind` is false (the SDXL marker predates `kind`).

    Raises FileExistsError when `out_dir` exists, is not empty and was not made by a tiny builder.
    """
    out_dir = Path(out_dir).absolute()
    if is_complete(out_dir, seed, builder_version, kind if record_kind else None):
        logger.debug("%s already holds %s seed %d (builder v%d)", out_dir, kind, seed, builder_version)
        return out_dir
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and read_marker(out_dir) is None:
        raise FileExistsError(f"{out_dir} is not empty and was not made by a tiny-model builder; not replacing it")

    started = time.monotonic()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.building-", dir=out_dir.parent))
    try:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        write(staging, seed)
        files = {
            path.relative_to(staging).as_posix(): path.stat().st_size
            for path in sorted(staging.rglob("*"))
            if path.is_file()
        }
        marker = {"builder_version": builder_version, "seed": seed, "files": files}
        if record_kind:
            marker["kind"] = kind
        # Written last: a folder with a marker is a finished one.
        (staging / MARKER).write_text(json.dumps(marker, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        normalize_permissions(staging)

        old = None
        if out_dir.exists():
            # A previous build (another seed or builder version), or an empty folder: move it aside first.
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
            out_dir.rename(old / "previous")
        staging.rename(out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("built %s (seed %d) in %s in %.2f s", kind, seed, out_dir, time.monotonic() - started)
    return out_dir


def byte_level_vocab() -> dict[str, int]:
    """A CLIP-style byte-level vocabulary with no merges: every prompt tokenizes (one token per byte)
    with no vocab/merges files to download. Ids 0 and 1 are <|startoftext|> and <|endoftext|>."""
    from tokenizers.pre_tokenizers import ByteLevel

    specials = ["<|startoftext|>", "<|endoftext|>"]
    chars = sorted(ByteLevel.alphabet())
    return {token: i for i, token in enumerate(specials + chars + [c + "</w>" for c in chars])}


def clip_tokenizer(model_max_length: int = 77):
    from transformers import CLIPTokenizer

    return CLIPTokenizer(vocab=byte_level_vocab(), merges=[], model_max_length=model_max_length)


def clip_text_config(hidden_size: int = 32) -> dict:
    """Keyword arguments of a tiny CLIP text encoder config for `clip_tokenizer()` (2 layers, 4 heads);
    the projection (CLIPTextModelWithProjection's pooled output) is as wide as the hidden states."""
    return dict(
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
        hidden_size=hidden_size,
        intermediate_size=37,
        layer_norm_eps=1e-5,
        num_attention_heads=4,
        num_hidden_layers=2,
        vocab_size=len(byte_level_vocab()),
        hidden_act="gelu",
        projection_dim=hidden_size,
        max_position_embeddings=77,
    )


def t5_vocab() -> list[tuple[str, float]]:
    """A T5-style Unigram vocabulary (token, log-probability) of single characters: ids 0, 1 and 2 are
    <pad>, </s> and <unk> as in T5, then the word-start marker "▁", every printable ASCII character and
    every "▁"-prefixed one. Every ASCII prompt tokenizes (about one token per character); other characters
    become <unk>."""
    import string

    chars = [char for char in string.printable if not char.isspace()]
    specials = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    return specials + [(char, -3.0) for char in chars] + [("\u2581" + char, -3.0) for char in chars]


def t5_tokenizer(model_max_length: int = 512):
    """A T5 tokenizer (Unigram, `tokenizers`-backed) built in memory from `t5_vocab()`: no spiece.model
    or tokenizer.json to download. `save_pretrained` writes tokenizer.json and tokenizer_config.json,
    which `T5TokenizerFast.from_pretrained` (the same class as T5Tokenizer in transformers 5) reads back.
    It also stands in for UMT5's tokenizer (google/umt5-xxl's is a T5 Unigram one too), which Wan's text
    encoder step loads with `AutoTokenizer`."""
    from transformers import T5Tokenizer

    return T5Tokenizer(vocab=t5_vocab(), extra_ids=0, model_max_length=model_max_length)


def t5_encoder_config(tokenizer, d_model: int) -> dict:
    """Keyword arguments of a tiny T5/UMT5 encoder config for `tokenizer` (2 layers, 4 heads)."""
    return dict(
        vocab_size=len(tokenizer),
        d_model=d_model,
        d_kv=8,
        d_ff=37,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=32,
        feed_forward_proj="gated-gelu",
        dropout_rate=0.0,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
        is_encoder_decoder=False,
        use_cache=False,
    )


QWEN_CHAT_SPECIAL_TOKENS = ("<|im_start|>", "<|im_end|>")
# The Qwen3 chat layout, minus everything the pipelines do not use (system prompts, tools, thinking).
QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def qwen_tokenizer(
    model_max_length: int = 512,
    special_tokens: Sequence[str] = QWEN_CHAT_SPECIAL_TOKENS,
    whole_words: Sequence[str] = (),
):
    """A Qwen2 BPE tokenizer over a byte-level vocabulary with no merges (one token per byte), plus
    Qwen's chat special tokens (or `special_tokens`) and a minimal chat template (pipelines that encode
    prompts through `apply_chat_template`, such as Z-Image, need one). Pad, eos and unk are <|endoftext|>.

    `whole_words`: texts each of whose pre-tokens (a word with the space before it, a run of punctuation;
    special tokens split them) becomes one token, through BPE merges that build it letter by letter. A
    pipeline that drops its prompt template's first N tokens of the real vocabulary (Qwen-Image: 34) drops
    exactly the template with this one too. Other text still tokenizes, mostly a byte a token."""
    from transformers import Qwen2Tokenizer

    vocab = byte_level_vocab()
    for token in special_tokens:
        vocab[token] = len(vocab)
    merges = _whole_word_merges(whole_words, special_tokens)
    for left, right in merges:
        vocab.setdefault(left + right, len(vocab))
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        model_max_length=model_max_length,
        additional_special_tokens=list(special_tokens),
    )
    tokenizer.chat_template = QWEN_CHAT_TEMPLATE
    return tokenizer


def _whole_word_merges(texts: Sequence[str], special_tokens: Sequence[str]) -> list[tuple[str, str]]:
    """BPE merges that make every pre-token of `texts` one token. The merges of step i (joining a word's
    first i symbols and its next one) rank before those of step i + 1, and at one step a word that starts
    with a space before one that does not: so a word's own merges always win over those of a word that
    starts in its middle ("Ġuser" stays whole although "user" is a word too)."""
    import re

    from transformers import Qwen2Tokenizer

    if not texts:
        return []
    pre_tokenizer = Qwen2Tokenizer(vocab=byte_level_vocab(), merges=[]).backend_tokenizer.pre_tokenizer
    split = re.compile("|".join(re.escape(token) for token in special_tokens)) if special_tokens else None
    words = set()
    for text in texts:
        for part in split.split(text) if split else [text]:
            words.update(word for word, _ in pre_tokenizer.pre_tokenize_str(part) if len(word) > 1)
    steps = sorted(
        {(i, not word.startswith("\u0120"), word[:i], word[i]) for word in words for i in range(1, len(word))}
    )
    return _join_split_words([(left, right) for _, _, left, right in steps], sorted(words))


def _join_split_words(merges: list[tuple[str, str]], words: Sequence[str]) -> list[tuple[str, str]]:
    """`merges` plus, ranked after them, merges that join the pieces of any word they leave split: a run
    of one character (eight spaces) becomes pairs at the first step, which the next steps never join."""
    from tokenizers.models import BPE

    merges = list(merges)
    while True:
        vocab = byte_level_vocab()
        for left, right in merges:
            vocab.setdefault(left + right, len(vocab))
        model = BPE(vocab=vocab, merges=merges)
        pieces = [[token.value for token in model.tokenize(word)] for word in words]
        split = [tokens for tokens in pieces if len(tokens) > 1]
        if not split:
            return merges
        merges.extend(dict.fromkeys((tokens[0], tokens[1]) for tokens in split))
