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
    return tile(to_uint8(images), columns, pad, scale)


def tile(tiles: np.ndarray, columns: int | None = None, pad: int = 2, scale: int = 1) -> np.ndarray:
    """grid of (B, H, W, 3) uint8 pictures."""
    count, h, w, _ = tiles.shape
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    canvas = np.full((rows * (h + pad) + pad, columns * (w + pad) + pad, 3), 255, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        canvas[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = tile
    return canvas.repeat(scale, axis=0).repeat(scale, axis=1) if scale > 1 else canvas


def save_image(picture: np.ndarray, path: Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(picture).save(path)


def pad_to_multiple(picture: np.ndarray, multiple: int = 16) -> np.ndarray:
    """Pad with white to sides divisible by `multiple` (the video encoder's macroblock)."""
    h, w = picture.shape[:2]
    return np.pad(picture, ((0, -h % multiple), (0, -w % multiple), (0, 0)), constant_values=255)


def save_animation(frames: list[np.ndarray], path: Path, seconds: float = 3.0) -> None:
    """Write frames as a looping GIF (or MP4 by suffix), holding the last frame for a moment. The GIF
    shares one palette taken from the first, middle and last frames (quantizing each frame on its own
    costs ten times more); the MP4 uses x264's fastest preset (noise frames barely compress anyway)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = list(frames) + [frames[-1]] * max(1, len(frames) // 4)
    fps = max(1, round(len(frames) / seconds))
    if path.suffix == ".mp4":
        import imageio.v2 as imageio

        with imageio.get_writer(
            path, fps=fps, codec="libx264", ffmpeg_params=["-preset", "ultrafast"], macro_block_size=16
        ) as writer:
            for frame in frames:
                writer.append_data(pad_to_multiple(frame))
        return
    samples = Image.fromarray(np.concatenate([frames[0], frames[len(frames) // 2], frames[-1]]))
    palette = samples.quantize(256, method=Image.Quantize.FASTOCTREE)
    pictures = [Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=round(1000 / fps), loop=0)


def save_animations(frames: list[np.ndarray], folder: Path) -> tuple[list[Path], str]:
    """The denoising as denoising.gif and denoising.mp4 in folder; returns the paths written and a note
    on anything skipped."""
    paths = [Path(folder) / "denoising.gif"]
    save_animation(frames, paths[0])
    try:
        save_animation(frames, Path(folder) / "denoising.mp4")
    except (ImportError, RuntimeError, OSError, ValueError) as e:
        return paths, f"MP4 not written ({e.__class__.__name__}: {e}); install imageio-ffmpeg"
    return paths + [Path(folder) / "denoising.mp4"], ""
