"""Display names from the names diffusers and block authors use, and node-id-safe names."""

from __future__ import annotations

import re

import pytest
from comfyui_modular_diffusers.nodes.naming import readable, sanitize


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("text_encoder", "Text Encoder"),
        ("text2image", "Text to Image"),
        ("vae_encoder", "VAE Encoder"),
        ("img2img", "Image to Image"),
        ("controlnet_union_text2image", "ControlNet Union Text to Image"),
        ("ip_adapter", "IP Adapter"),
        ("VaeRoundTrip", "Vae Round Trip"),
        ("SDXLDecodeStep", "SDXL Decode Step"),
        ("fade_loop_v2", "Fade Loop V2"),
        ("Wan22Vace", "Wan22 Vace"),
    ],
)
def test_readable(name, expected):
    assert readable(name) == expected


def test_a_familys_own_words():
    assert readable("t2va", {"t2va": "Text to Video+Audio"}) == "Text to Video+Audio"
    assert readable("t2va") == "T to Va"  # why a family lists its abbreviations


@pytest.mark.parametrize(
    ("name", "expected"),
    [("vae_roundtrip", "vae_roundtrip"), ("my-blocks v2", "my_blocks_v2"), ("blöcke.x", "bl_cke_x"), ("", "_")],
)
def test_sanitize(name, expected):
    assert sanitize(name) == expected
    assert re.fullmatch(r"[A-Za-z0-9_]+", sanitize(name))
