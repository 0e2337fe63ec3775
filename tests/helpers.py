"""What several test modules build: tiny random checkpoints, a small easy dataset and zip files of
PNG images. Imported by conftest.py (fixtures) and by the test modules themselves."""

import io
import time
import zipfile

import numpy as np
import torch
from PIL import Image

from fastdiff.config import CascadeConfig, DiffusionConfig, ModelConfig
from fastdiff.data import ImageDataset
from fastdiff.nn.cascade import build_model
from fastdiff.nn.checkpoint import save_model

CLASSES = "abcdefghij"  # the tiny checkpoint's classes
TINY = dict(n_feat=8, class_names=tuple(CLASSES))


def make_tiny_checkpoint(folder, num_timesteps: int = 50, cascade: bool = False, **model_options):
    """A tiny model (a LowDiff cascade of 8, 16 and 32 with cascade=True) with random weights saved as
    a checkpoint folder."""
    torch.manual_seed(0)
    cascade_config = CascadeConfig() if cascade else None
    model = build_model(ModelConfig(**{**TINY, **model_options}), cascade_config)
    for p in model.parameters():  # also the layers that start at zero, so that the output varies
        torch.nn.init.normal_(p, std=0.05)
    save_model(
        folder,
        model.state_dict(),
        model.config,
        DiffusionConfig(num_timesteps=num_timesteps),
        cascade_config=cascade_config,
    )
    return folder


def color_dataset(n=64, num_classes=4) -> ImageDataset:
    """Each class a flat colour plus a little noise: easy to learn in a few dozen steps."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % num_classes
    colors = torch.tensor([[230, 30, 30], [30, 230, 30], [30, 30, 230], [230, 230, 30]])[labels]
    images = colors[:, :, None, None] + torch.randint(-20, 20, (n, 3, 32, 32), generator=generator)
    return ImageDataset(images.clamp(0, 255).to(torch.uint8), labels, ("red", "green", "blue", "yellow")[:num_classes])


def png(seed: int) -> bytes:
    """A 32x32 PNG of random pixels."""
    return png_bytes(Image.fromarray(np.random.default_rng(seed).integers(0, 256, (32, 32, 3), dtype=np.uint8)))


def flat_png(color: tuple[int, int, int]) -> bytes:
    """A 32x32 PNG of one colour."""
    return png_bytes(Image.new("RGB", (32, 32), color))


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_zip(path, files: dict[str, bytes]):
    """A .zip holding files (name -> content) at path."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def wait_until(condition, timeout: float, what: str, poll: float = 0.01) -> None:
    """Poll condition() until it is true; fail the test naming `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(poll)
