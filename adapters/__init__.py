"""The generic layer: any diffusers `ModularPipelineBlocks` -> a ComfyUI node.

Nothing here knows a model family or imports `nodes/`. The socket vocabulary (`socket_types`, `spec`,
`names`, `sockets`, `hints`, `convert`), `state` and `plan` import no ComfyUI module; `layout`, `run`,
`factory` and the model-management modules need ComfyUI and are imported only where ComfyUI is running
(or by tests that put ComfyUI on the path). docs/architecture.md has the map.
"""
