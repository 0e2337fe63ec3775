"""Replaying a finished run (diffusion/trajectory.py) one step at a time: for one image of the grid, the
sample x_t after the step, the predicted clean image x0 and the predicted noise eps side by side, and a
strip of the whole run. Pictures are put together from the kept uint8 arrays only: no model call."""

from __future__ import annotations

import numpy as np

from .frames import enlarged, pictures_side_by_side
from .trajectory import KeptStep, Trajectory

SCALE = 6  # pixels per image pixel in the step view
STRIP_COLUMNS = 10  # steps in the downloadable strip
GAP = 4  # white pixels between pictures
ANIMATION_FRAMES = 40  # frames of the GIF and MP4, at most
NO_RUN = "Press Generate first: the latest run is kept here to replay."


def check_position(trajectory: Trajectory | None, percent, image) -> tuple[int, int]:
    """(kept step nearest to `percent` through the run, image) as 0-based indices; ValueError with a
    one-line message for bad input."""
    if trajectory is None or not trajectory.steps:
        raise ValueError(NO_RUN)
    if percent is None or image is None:
        raise ValueError("choose a point of the run and an image")
    if not 0 <= float(percent) <= 100:
        raise ValueError(f"the point of the run must be between 0 and 100 %, got {percent}")
    if not 1 <= int(image) <= trajectory.num_images:
        raise ValueError(f"image must be between 1 and {trajectory.num_images} for this run, got {image}")
    return round(float(percent) / 100 * (len(trajectory.steps) - 1)), int(image) - 1


def row(pictures: list[np.ndarray], size: int, scale: int) -> np.ndarray:
    """Pictures enlarged to one size, left to right with white gaps."""
    parts = []
    for picture in pictures:
        if parts:
            parts.append(np.full((size * scale, GAP, 3), 255, np.uint8))
        parts.append(enlarged(picture[None], size * scale)[0])
    return np.concatenate(parts, axis=1)


def step_view(trajectory: Trajectory, position: int, image: int) -> np.ndarray:
    """x_t | x0 | eps of one image at one kept step."""
    step = trajectory.steps[position]
    return row([step.x_t[image], step.x0[image], step.eps[image]], trajectory.image_size, SCALE)


def step_caption(trajectory: Trajectory, step: KeptStep) -> str:
    stage = ""
    if trajectory.num_stages > 1:
        stage = f" · stage {step.stage + 1}/{trajectory.num_stages} at {step.resolution}x{step.resolution}"
    return (
        f"step {step.index + 1}/{trajectory.num_steps}{stage} · model evaluated at t = {step.t}, "
        f"sigma_t = {step.sigma:.3f}, SNR = {step.snr:.3g} · left: x_t after the step, middle: predicted "
        f"x0, right: predicted eps (-3 black, +3 white)"
    )


def strip(trajectory: Trajectory, image: int, columns: int = STRIP_COLUMNS) -> np.ndarray:
    """Rows x_t, x0 and eps of one image at `columns` evenly spaced kept steps (the last included)."""
    count = len(trajectory.steps)
    shown = min(columns, count)
    picks = [round(i * (count - 1) / max(1, shown - 1)) for i in range(shown)]
    steps = [trajectory.steps[p] for p in picks]
    size = trajectory.image_size
    rows = [row([getattr(s, name)[image] for s in steps], size, 2) for name in ("x_t", "x0", "eps")]
    gap = np.full((GAP, rows[0].shape[1], 3), 255, np.uint8)
    return np.concatenate([rows[0], gap, rows[1], gap, rows[2]], axis=0)


def animation_frames(trajectory: Trajectory, count: int = ANIMATION_FRAMES) -> list[np.ndarray]:
    """x_t beside x0 of the whole grid at `count` evenly spaced kept steps (the last included), twice
    enlarged: the frames of the run's GIF and MP4."""
    kept = len(trajectory.steps)
    shown = min(count, kept)
    picks = sorted({round(i * (kept - 1) / max(1, shown - 1)) for i in range(shown)})
    size = trajectory.image_size
    return [pictures_side_by_side(trajectory.steps[p].x_t, trajectory.steps[p].x0, size, scale=2) for p in picks]
