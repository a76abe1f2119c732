"""Display names and categories of the pack's nodes, from the names diffusers and block authors use."""

from __future__ import annotations

import re
from collections.abc import Mapping

ROOT_CATEGORY = "Modular Diffusers"  # the pack's place in the node library; every category is below it

# Words that read better written out, whatever the family (a family's own words are in its table entry).
WORDS = {"vae": "VAE", "img2img": "Image to Image", "controlnet": "ControlNet", "ip": "IP"}

_UNSAFE = re.compile(r"[^A-Za-z0-9_]")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")  # FooBar, SDXLStep -> SDXL Step


def readable(name: str, words: Mapping[str, str] = WORDS) -> str:
    """A display name for a stage, workflow, family or class name: 'text_encoder' -> 'Text Encoder',
    'text2image' -> 'Text to Image', 'SDXLDecodeStep' -> 'SDXL Decode Step', 'vae_encoder' -> 'VAE Encoder';
    `words` spells out names and words that read better otherwise."""
    if name in words:
        return words[name]
    parts = []
    for word in _CAMEL.sub(" ", name).replace("_", " ").split():
        if word in words:
            parts.append(words[word])
            continue
        word = re.sub(r"(?<=[a-z])2(?=[a-z])", " to ", word)
        parts.append(" ".join(part if part == "to" else part[:1].upper() + part[1:] for part in word.split(" ")))
    return " ".join(parts) or name


def sanitize(name: str) -> str:
    """A node-id- and module-name-safe form of a folder, module or class name."""
    return _UNSAFE.sub("_", name) or "_"
