"""Turning sample tensors into pictures: grids, denoising strips, GIF and MP4 animations."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(B, C, H, W) in [-1, 1] -> (B, H, W, C) uint8; grayscale repeated to RGB."""
    images = images.detach().float().cpu().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    if images.shape[1] == 1:
        images = images.repeat(1, 3, 1, 1)
    return images.permute(0, 2, 3, 1).numpy()


def grid(images: torch.Tensor, columns: int | None = None, pad: int = 2, scale: int = 1) -> np.ndarray:
    """Tile a batch into one (H, W, 3) uint8 picture, columns = ceil(sqrt(B)) by default."""
    tiles = to_uint8(images)
    count, h, w, _ = tiles.shape
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    canvas = np.full((rows * (h + pad) + pad, columns * (w + pad) + pad, 3), 255, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        canvas[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = tile
    return canvas.repeat(scale, axis=0).repeat(scale, axis=1) if scale > 1 else canvas


def save_png(picture: np.ndarray, path: Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(picture).save(path)


def save_animation(frames: list[np.ndarray], path: Path, seconds: float = 3.0) -> None:
    """Write frames as a looping GIF (or MP4 by suffix), holding the last frame for a moment."""
    import imageio.v3 as iio

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    frames = list(frames) + [frames[-1]] * max(1, len(frames) // 4)
    fps = max(1, round(len(frames) / seconds))
    if Path(path).suffix == ".mp4":
        even = [f[: f.shape[0] // 2 * 2, : f.shape[1] // 2 * 2] for f in frames]  # H.264 needs even sides
        iio.imwrite(path, even, fps=fps, codec="libx264", plugin="pyav" if _has_pyav() else None)
    else:
        iio.imwrite(path, frames, duration=1000 / fps, loop=0)


def _has_pyav() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True
