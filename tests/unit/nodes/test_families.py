"""The per-family table: every field it names exists where it is looked up."""

from __future__ import annotations

import dataclasses

import comfy.latent_formats
import pytest
from comfyui_modular_diffusers.nodes.families import FAMILIES, family_spec
from comfyui_modular_diffusers.nodes.family_spec import FamilySpec, NodeOverride


@pytest.mark.parametrize("family", sorted(name for name, spec in FAMILIES.items() if spec.latent_format))
def test_every_latent_format_exists_in_comfyui(family):
    name = FAMILIES[family].latent_format
    latent_format = getattr(comfy.latent_formats, name, None)
    assert isinstance(latent_format, type) and issubclass(latent_format, comfy.latent_formats.LatentFormat), (
        f"{family}: comfy.latent_formats has no latent format {name!r}"
    )
    assert latent_format().latent_channels > 0


def test_a_family_missing_from_the_table_gets_a_generic_entry():
    assert family_spec("some_new_family") == FamilySpec(label="Some New Family")
    assert family_spec("flux") is FAMILIES["flux"]


def test_table_rows_take_keywords_only():
    with pytest.raises(TypeError):
        FamilySpec("Echo", {"EchoBlocks": "Echo"})  # which dict is which would be unreadable
    with pytest.raises(TypeError):
        NodeOverride("MDiff_X")
    assert all(field.kw_only for field in dataclasses.fields(FamilySpec))


def test_a_familys_words_come_with_the_generic_ones():
    words = FAMILIES["minimax_h3"].all_words
    assert words["t2va"] == "Text to Video+Audio" and words["vae"] == "VAE"
