"""Preview conversions for families whose loop latents are not image-shaped (per-family table data)."""

from __future__ import annotations

from typing import Any

import torch


def unpack_2x2_patches(latents: Any, block_state: Any) -> Any:
    """Packed latents [B, (H/2)*(W/2), C*4] (Flux-style 2x2 patches) -> [B, C, H, W] for a preview.
    The grid comes from the tokens' positions (`img_ids`), else the image size, else a square."""
    if not isinstance(latents, torch.Tensor) or latents.ndim != 3:
        return latents
    batch, tokens, packed = latents.shape
    channels = packed // 4
    height, width = _grid(tokens, block_state)
    grid = latents.reshape(batch, height, width, channels, 2, 2)
    return grid.permute(0, 3, 1, 4, 2, 5).reshape(batch, channels, height * 2, width * 2)


def _grid(tokens: int, block_state: Any) -> tuple[int, int]:
    # The token positions: columns 1 and 2 of `img_ids` hold each token's row and column (an edit
    # model appends its input image's tokens after the generated ones).
    ids = getattr(block_state, "img_ids", None)
    if isinstance(ids, torch.Tensor) and ids.ndim == 2 and ids.shape[0] >= tokens and ids.shape[1] >= 3:
        rows, cols = int(ids[:tokens, 1].max()) + 1, int(ids[:tokens, 2].max()) + 1
        if rows * cols == tokens:
            return rows, cols
    height, width = getattr(block_state, "height", None), getattr(block_state, "width", None)
    if isinstance(height, int) and isinstance(width, int) and height > 0 and width > 0:
        scale = (height * width / tokens) ** 0.5
        rows, cols = round(height / scale), round(width / scale)
        if rows * cols == tokens:
            return rows, cols
    side = int(tokens**0.5)
    return (side, tokens // side) if side * (tokens // side) == tokens else (1, tokens)
