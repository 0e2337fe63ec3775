"""Pictures of a sampling run as it goes: a live frame (x_t beside the predicted clean image) sent at
most every FRAME_INTERVAL seconds (always the last step, and the first of each cascade stage so that
every resolution is seen). Only those steps are converted to pictures, so watching costs little beside
the sampler. Low-resolution stages are enlarged to the final size.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from ..images import tile, to_uint8
from .samplers import Step
from .sampling import RunStep

FRAME_INTERVAL = 0.1  # seconds between live frames: at most 10 per second


@dataclass
class Progress:
    step: RunStep  # the step just computed
    seconds: float  # since sampling started
    images_per_sec: float  # images finished per second at the current pace
    picture: np.ndarray  # x_t and predicted x0 grids side by side, at the final size
    stage: str  # "stage 2/3 at 16x16" for a cascade, "" for plain sampling


def side_by_side(step: Step, size: int, scale: int = 1) -> np.ndarray:
    """The noisy sample x_t (left) and the clean image predicted from it (right), enlarged (nearest
    neighbour) to images of size x size."""
    return pictures_side_by_side(to_uint8(step.x_t), to_uint8(step.x0), size, scale)


def pictures_side_by_side(x_t: np.ndarray, x0: np.ndarray, size: int, scale: int = 1) -> np.ndarray:
    """side_by_side of (B, h, w, 3) uint8 pictures."""
    left, right = (tile(enlarged(pictures, size), scale=scale) for pictures in (x_t, x0))
    gap = np.full((left.shape[0], 4 * scale, 3), 255, np.uint8)
    return np.concatenate([left, gap, right], axis=1)


def enlarged(pictures: np.ndarray, size: int) -> np.ndarray:
    """(B, h, w, 3) -> (B, size, size, 3), nearest neighbour."""
    factor = size // pictures.shape[1]
    return pictures.repeat(factor, axis=1).repeat(factor, axis=2)


def stage_label(step: RunStep, num_stages: int) -> str:
    if num_stages == 1:
        return ""
    return f"stage {step.stage + 1}/{num_stages} at {step.resolution}x{step.resolution}"


def watch(
    steps: Iterator[RunStep],
    size: int,
    num_stages: int,
    interval: float = FRAME_INTERVAL,
    clock: Callable[[], float] = time.perf_counter,
) -> Iterator[Progress]:
    """Run steps (images of side `size` at the end), yield a Progress at most every `interval` seconds,
    at the first step of each stage and after the last step. The last Progress holds the last step,
    whose x_t is the final images."""
    start, last_sent = clock(), -math.inf
    for step in steps:
        now = clock()
        is_last = step.index + 1 == step.num_steps
        if is_last or step.stage_index == 0 or now - last_sent >= interval:
            last_sent = now
            seconds = max(now - start, 1e-9)
            batch = step.x_t.shape[0]
            yield Progress(
                step,
                seconds,
                batch * (step.index + 1) / step.num_steps / seconds,
                side_by_side(step, size),
                stage_label(step, num_stages),
            )
