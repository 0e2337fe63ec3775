"""Generation for the app: settings from the page checked into one `Request`, a sampler run (plain, or
a LowDiff cascade of 2 or 3 stages) whose frames are throttled for streaming, and the final grid, PNG,
GIF and MP4 written to a folder.

Streaming sends at most one frame per FRAME_INTERVAL (always the last, and the first of each cascade
stage, so that every resolution is seen; low-resolution frames are enlarged to the final size), and
only those frames and the ~40 animation frames are converted to pictures: with ~1.5 ms to convert
and write a frame (as BMP, see app.py), the page costs at most ~2% of one core beside the sampler.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Generator

import numpy as np
import torch
import torch.nn.functional as F

from .app_models import LoadedModel
from .cascade_sampling import CascadeStep, Stage, cascade_sample_steps, check_stages, default_stages
from .cli import UsageError, class_labels
from .images import grid, save_animation, save_png
from .pipeline import check_settings
from .samplers import SAMPLER_NAMES, Step

SAMPLER_LABELS = {name: key for key, name in SAMPLER_NAMES.items()}  # the page's choices -> SAMPLERS keys
MAX_IMAGES = 16
MAX_SEED = 2 ** 31 - 1
FRAME_INTERVAL = 0.1      # seconds between streamed frames: at most 10 per second
ANIMATION_FRAMES = 40     # frames kept for the GIF and MP4


@dataclass
class Request:
    sampler: str                 # key of fastdiff.samplers.SAMPLERS
    num_steps: int
    guidance: float
    eta: float
    labels: torch.Tensor | None  # (num_images,) class labels, None for an unconditional model
    seeds: list[int]             # image i uses seeds[i]
    stages: list[Stage]          # one stage (plain sampling at full size) or a cascade's default stages

    @property
    def configuration(self) -> tuple[str, int, float, int]:
        """(sampler, steps, guidance, stages), as eval.json records a configuration."""
        return self.sampler, self.num_steps, self.guidance, len(self.stages)


@dataclass
class Progress:
    index: int                   # 0-based step just computed
    num_steps: int
    seconds: float               # since sampling started
    images_per_sec: float        # images finished per second at the current pace
    picture: np.ndarray          # x_t and predicted x0 grids side by side, at the final size
    stage: str                   # "stage 2/3 at 16x16" for a cascade, "" for plain sampling


def whole_number(value, name: str) -> int:
    """A control's value as an int; ValueError for empty, NaN or fractional input."""
    if value is None or isinstance(value, bool) or not math.isfinite(float(value)) or float(value) != int(value):
        raise ValueError(f"{name} must be a whole number, got {value}")
    return int(value)


def make_request(loaded: LoadedModel, class_name: str, sampler_label: str, steps, guidance, eta,
                 seed, num_images, num_stages: int = 1) -> Request:
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
    num_steps = check_settings(sampler, whole_number(steps, "steps"), guidance, eta,
                               loaded.schedule.num_timesteps)
    stages = default_stages(num_stages, loaded.model, loaded.schedule, sampler, num_steps)
    check_stages(loaded.model, stages, guidance, eta, loaded.schedule.num_timesteps)
    config = loaded.model.config
    try:
        labels = class_labels(class_name or "random", config.class_names if config.num_classes else (),
                              num_images, seed)
    except UsageError as e:
        raise ValueError(str(e)) from e
    return Request(sampler, num_steps, guidance, eta, labels, list(range(seed, seed + num_images)), stages)


def side_by_side(step: Step, size: int, scale: int = 1) -> np.ndarray:
    """The noisy sample x_t (left) and the clean image predicted from it (right), enlarged (nearest
    neighbour) to images of size x size."""
    left, right = (grid(F.interpolate(images, size=(size, size)), scale=scale) for images in (step.x_t, step.x0))
    gap = np.full((left.shape[0], 4 * scale, 3), 255, np.uint8)
    return np.concatenate([left, gap, right], axis=1)


def sampler_steps(loaded: LoadedModel, request: Request, precision: str):
    """The sampler's step generator for a checked request (one stage is exactly plain sampling)."""
    return cascade_sample_steps(loaded.model, loaded.schedule, request.labels, request.seeds, request.stages,
                                request.guidance, request.eta, precision)


def stage_label(step: CascadeStep, num_stages: int) -> str:
    if num_stages == 1:
        return ""
    return f"stage {step.stage + 1}/{num_stages} at {step.resolution}x{step.resolution}"


def stream(loaded: LoadedModel, request: Request, precision: str, animation: list[np.ndarray],
           interval: float = FRAME_INTERVAL, clock: Callable[[], float] = time.perf_counter,
           ) -> Generator[Progress, None, torch.Tensor]:
    """Run the sampler, yield a Progress at most every `interval` seconds, at the first step of each
    stage and after the last step, append animation frames to `animation`, and return the final images (B, C, H, W) in [-1, 1]."""
    size = loaded.model.config.image_size
    start, last_sent = clock(), -math.inf
    for step in sampler_steps(loaded, request, precision):
        now = clock()
        is_last = step.index + 1 == step.num_steps
        if step.index % max(1, step.num_steps // ANIMATION_FRAMES) == 0 or is_last:
            animation.append(side_by_side(step, size, scale=2))
        if is_last or step.stage_index == 0 or now - last_sent >= interval:
            last_sent = now
            seconds = max(now - start, 1e-9)
            yield Progress(step.index, step.num_steps, seconds,
                           len(request.seeds) * (step.index + 1) / step.num_steps / seconds,
                           side_by_side(step, size), stage_label(step, len(request.stages)))
        images = step.x_t
    return images


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
