"""The family workflow cases of tests/server/test_families_server.py: one module per family (as
diffusers' modular_pipelines has one folder per family), each with its `CASES` and the function that
reads its workflows' widgets into the plain-diffusers call. Adding a family is adding a module and a
line here."""

from __future__ import annotations

from family_cases import flux, flux2, helios, hunyuan_video1_5, ltx, minimax_music3, qwenimage, sd3, wan, z_image
from family_cases.case import Case

CASES: list[Case] = [
    *z_image.CASES,
    *flux.CASES,
    *flux2.CASES,
    *helios.CASES,
    *hunyuan_video1_5.CASES,
    *ltx.CASES,
    *minimax_music3.CASES,
    *qwenimage.CASES,
    *sd3.CASES,
    *wan.CASES,
]
