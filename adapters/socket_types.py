"""The socket types a node made by the adapter uses: the pack's own (`MDIFF_*`) and ComfyUI's.

Images, masks, audio and video use ComfyUI's own types, so core nodes (Load Image, Save Image, Save
Video, Save Audio) connect directly; everything else a block passes gets a namespaced type.
"""

from __future__ import annotations

SOCKET_PREFIX = "MDIFF_"  # every custom socket type of this pack starts with it
STATE = SOCKET_PREFIX + "STATE"  # a diffusers PipelineState
COMPONENTS = SOCKET_PREFIX + "COMPONENTS"  # a ComponentsBundle (loaded models)
TENSOR = SOCKET_PREFIX + "TENSOR"
DTYPE = SOCKET_PREFIX + "DTYPE"
DICT = SOCKET_PREFIX + "DICT"
VALUE = SOCKET_PREFIX + "VALUE"  # anything the mapping cannot type more precisely

WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN")  # ComfyUI's widget types
COMBO = "COMBO"  # ComfyUI's dropdown (a block author's `options` hint)
IMAGE = "IMAGE"  # ComfyUI's image batch: float tensor [B, H, W, C] in [0, 1]
MASK = "MASK"  # ComfyUI's mask: float tensor [B, H, W] in [0, 1]
AUDIO = "AUDIO"  # ComfyUI's audio: {"waveform": [B, C, T], "sample_rate": int}
VIDEO = "VIDEO"  # ComfyUI's video (frames, frame rate, audio)
