"""MiniMax Music 3 text-to-music (tiny-minimax-music3): audio, saved by core Save Audio (16-bit FLAC).

The seed is the Semantic Generator node's: one generator runs through the pipeline as in diffusers' one
call (the denoise step draws its noise from what the autoregressive stage left), so the graph's denoise
node has no seed widget. ComfyUI has no latent format for its 1D Flow-VAE latents: no previews. Its
steps are slow enough to interrupt on a longer clip (10 s: 1250 latent frames).
"""

from __future__ import annotations

from typing import Any

from family_cases.case import Case, Workflow, inputs_of


def minimax_music3(graph: Workflow) -> dict[str, Any]:
    # The guidance_scale widget keeps the guider's default (CFG at 1.7 in diffusers' blocks), so the plain
    # call leaves the guider alone.
    semantic, denoise = inputs_of(graph, "_semantic_generator"), inputs_of(graph, "_denoise")
    assert denoise["guidance_scale"] == 1.7
    return {"prompt": semantic["prompt"], "lyrics": semantic["lyrics"], "audio_duration": semantic["audio_duration"]}


CASES = [
    Case(
        graph="minimax_music3_text2music",
        one_node="minimax_music3_text2music_one_node",
        model="tiny-minimax-music3",
        denoise="3",
        save="5",
        single="2",
        single_save="3",
        reference=minimax_music3,
        other_seeds=("2",),
        slow_steps={"audio_duration": 10.0},
        slow_node="2",
        output="audios",
        sample_rate=16000,
        previews=False,
        non_square_preview=False,
    ),
]
