"""The pack's hand-written nodes (every other node is generated from a block): registered first, and
recorded in the catalog snapshot like the generated ones."""

from __future__ import annotations

from comfy_api.latest import io

from .checkpoints import LoadCheckpoint
from .examples import EXAMPLE_NODES
from .loaders import LoadComponents
from .lora import LoraLoader
from .replace import ReplaceComponent
from .state import SetStateValues, ShowState

HAND_WRITTEN_NODES: list[type[io.ComfyNode]] = [
    LoadComponents,
    LoraLoader,
    ShowState,
    SetStateValues,
    *EXAMPLE_NODES,
    LoadCheckpoint,  # after the released nodes
    ReplaceComponent,
]
