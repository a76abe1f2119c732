"""Preview conversions for families whose loop latents are not image-shaped (per-family table data)."""

from __future__ import annotations

from typing import Any

import torch


def unpack_2x2_patches(latents: Any, block_state: Any) -> Any:
    """Packed latents [B, (H/2)*(W/2), C*4] (Flux-style 2x2 patches) -> [B, C, H, W] for a preview.
    The grid comes from the tokens' positions (`img_ids`), else their grids' shapes (`img_shapes`), else
    the image size, else a square."""
    if not isinstance(latents, torch.Tensor) or latents.ndim != 3:
        return latents
    batch, tokens, packed = latents.shape
    channels = packed // 4
    height, width = _grid(tokens, block_state)
    grid = latents.reshape(batch, height, width, channels, 2, 2)
    return grid.permute(0, 3, 1, 4, 2, 5).reshape(batch, channels, height * 2, width * 2)


def tokens_to_grid(latents: Any, block_state: Any) -> Any:
    """Packed latents [B, H*W, C] with one token per latent position (Flux.2: each token already holds a
    2x2 patch in its C channels) -> [B, C, H, W], the layout diffusers unpacks them to after the loop and
    ComfyUI's latent format previews. The grid comes from the tokens' positions (`latent_ids`, rows of
    (T, H, W, L)), else the image size, else a square."""
    if not isinstance(latents, torch.Tensor) or latents.ndim != 3:
        return latents
    batch, tokens, channels = latents.shape
    height, width = _grid(tokens, block_state, ids_name="latent_ids")
    return latents.reshape(batch, height, width, channels).permute(0, 3, 1, 2)


def _grid(tokens: int, block_state: Any, ids_name: str = "img_ids") -> tuple[int, int]:
    # The token positions: columns 1 and 2 of the ids hold each token's row and column (an edit model
    # appends its input image's tokens after the generated ones); batched ids [B, N, D]: the first's.
    ids = getattr(block_state, ids_name, None)
    if isinstance(ids, torch.Tensor) and ids.ndim == 3:
        ids = ids[0]
    if isinstance(ids, torch.Tensor) and ids.ndim == 2 and ids.shape[0] >= tokens and ids.shape[1] >= 3:
        rows, cols = int(ids[:tokens, 1].max()) + 1, int(ids[:tokens, 2].max()) + 1
        if rows * cols == tokens:
            return rows, cols
    shape = _first_image_shape(block_state)
    if shape is not None and shape[0] * shape[1] == tokens:
        return shape
    height, width = getattr(block_state, "height", None), getattr(block_state, "width", None)
    if isinstance(height, int) and isinstance(width, int) and height > 0 and width > 0:
        scale = (height * width / tokens) ** 0.5
        rows, cols = round(height / scale), round(width / scale)
        if rows * cols == tokens:
            return rows, cols
    side = int(tokens**0.5)
    return (side, tokens // side) if side * (tokens // side) == tokens else (1, tokens)


def _first_image_shape(block_state: Any) -> tuple[int, int] | None:
    # Qwen-Image's loops carry `img_shapes`: per batch item, the (frames, rows, columns) of each token grid
    # its transformer sees, the generated image's first (an edit model's input image after it).
    shapes = getattr(block_state, "img_shapes", None)
    try:
        frames, rows, cols = (int(size) for size in shapes[0][0])
    except (TypeError, ValueError, IndexError, KeyError):
        return None
    return (rows, cols) if frames == 1 else None


def unpack_video_tokens(latents: Any, block_state: Any) -> Any:
    """Packed video latents [B, F*H*W, C], one token per latent voxel in frame, row, column order
    (LTX-Video's transformer, patch size 1) -> [B, C, F, H, W], the layout diffusers unpacks them to
    after the loop and ComfyUI's video latent formats preview. Rows and columns are the video's height
    and width over the VAE's spatial compression, which LTX's loop carries in `rope_interpolation_scale`
    (temporal ratio / frame rate, spatial ratio, spatial ratio); unchanged (no preview) without them."""
    if not isinstance(latents, torch.Tensor) or latents.ndim != 3:
        return latents
    batch, tokens, channels = latents.shape
    scale = getattr(block_state, "rope_interpolation_scale", None)
    height, width = getattr(block_state, "height", None), getattr(block_state, "width", None)
    if not isinstance(scale, tuple | list) or len(scale) != 3:
        return latents
    if not isinstance(height, int) or not isinstance(width, int):
        return latents
    rows, cols = height // int(scale[1]), width // int(scale[2])
    if rows < 1 or cols < 1 or tokens % (rows * cols):
        return latents
    frames = tokens // (rows * cols)
    return latents.reshape(batch, frames, rows, cols, channels).permute(0, 4, 1, 2, 3)
