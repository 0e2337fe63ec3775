"""Generation for the app: settings from the page checked once into a `Request` (a sampling plan,
labels and seeds), a run watched for streaming (diffusion/frames.py), and the final grid, PNG, GIF and
MP4 written to a folder.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..diffusion.frames import Progress, watch
from ..diffusion.samplers import SAMPLER_NAMES
from ..diffusion.sampling import Plan, class_labels, make_plan, sample_steps
from ..images import grid, save_animation, save_png
from .models import LoadedModel

SAMPLER_LABELS = {name: key for key, name in SAMPLER_NAMES.items()}  # the page's choices -> SAMPLERS keys
DEFAULT_SAMPLER = SAMPLER_NAMES["dpm++sde"]  # fewest noise textures at 20 steps (issue 15, assets/diagnosis.md)
MAX_IMAGES = 16
MAX_SEED = 2**31 - 1


@dataclass
class Request:
    plan: Plan
    labels: torch.Tensor | None  # (num_images,) class labels, None for an unconditional model
    seeds: list[int]  # image i uses seeds[i]


def whole_number(value, name: str) -> int:
    """A control's value as an int; ValueError for empty, NaN or fractional input."""
    if value is None or isinstance(value, bool) or not math.isfinite(float(value)) or float(value) != int(value):
        raise ValueError(f"{name} must be a whole number, got {value}")
    return int(value)


def make_request(
    loaded: LoadedModel,
    class_name: str,
    sampler_label: str,
    steps,
    guidance,
    eta,
    seed,
    num_images,
    num_stages: int = 1,
) -> Request:
    """Check every setting against the model; raises ValueError with a one-line message. A cascade's
    stages are its default ones scaled to `steps` plain steps."""
    if sampler_label not in SAMPLER_LABELS:
        raise ValueError(f"unknown sampler {sampler_label!r}: use one of {', '.join(SAMPLER_LABELS)}")
    sampler = SAMPLER_LABELS[sampler_label]
    num_images = whole_number(num_images, "number of images")
    if not 1 <= num_images <= MAX_IMAGES:
        raise ValueError(f"number of images must be between 1 and {MAX_IMAGES}, got {num_images}")
    seed = whole_number(seed, "seed")
    if not 0 <= seed <= MAX_SEED - MAX_IMAGES:
        raise ValueError(f"seed must be between 0 and {MAX_SEED - MAX_IMAGES}, got {seed}")
    if guidance is None or eta is None:
        raise ValueError("guidance weight and eta need a value")
    guidance, eta = float(guidance), float(eta if sampler == "ddim" else 0.0)
    plan = make_plan(loaded.model, loaded.schedule, sampler, whole_number(steps, "steps"), guidance, eta, num_stages)
    config = loaded.model.config
    labels = class_labels(class_name or "random", config.class_names if config.num_classes else (), num_images, seed)
    return Request(plan, labels, list(range(seed, seed + num_images)))


def run_steps(loaded: LoadedModel, request: Request, precision: str):
    """The sampling run of a checked request."""
    return sample_steps(loaded.model, loaded.schedule, request.labels, request.seeds, request.plan, precision)


def stream(
    loaded: LoadedModel, request: Request, precision: str, animation: list[np.ndarray], **timing
) -> Iterator[Progress]:
    """The request's run, watched: Progress records for the page, animation frames into `animation`.
    timing: watch's interval and clock."""
    return watch(
        run_steps(loaded, request, precision),
        loaded.model.config.image_size,
        len(request.plan.stages),
        animation,
        **timing,
    )


def pad_to_multiple(picture: np.ndarray, multiple: int = 16) -> np.ndarray:
    """Pad with white to sides divisible by `multiple` (the video encoder's macroblock)."""
    h, w = picture.shape[:2]
    return np.pad(picture, ((0, -h % multiple), (0, -w % multiple), (0, 0)), constant_values=255)


def save_outputs(images: torch.Tensor, animation: list[np.ndarray], folder: Path) -> tuple[list[Path], str]:
    """Write the grid PNG, the denoising GIF and MP4; returns the paths and a note on anything skipped."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "samples.png", folder / "denoising.gif"]
    save_png(grid(images), paths[0])
    save_animation(animation, paths[1])
    try:
        save_animation([pad_to_multiple(f) for f in animation], folder / "denoising.mp4")
    except (ImportError, RuntimeError, OSError, ValueError) as e:
        return paths, f"MP4 not written ({e.__class__.__name__}: {e}); install imageio-ffmpeg"
    return paths + [folder / "denoising.mp4"], ""
