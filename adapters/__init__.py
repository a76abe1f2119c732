"""The generic layer: any diffusers `ModularPipelineBlocks` -> a ComfyUI node.

Nothing here knows a model family. The pure parts (`sockets`, `state`, `plan`) import no ComfyUI
module; `factory` and `show_state` need ComfyUI's `comfy_api` and are imported only where ComfyUI
is running (or by tests that put ComfyUI on the path).
"""
