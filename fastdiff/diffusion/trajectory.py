"""A sampling run kept for replay: for at most MAX_KEPT + 1 evenly spaced steps (the last always), every
image's sample x_t after the step, the clean image x0 and the noise eps the model predicted there, as
uint8 pictures, with the step's t, sigma_t and SNR. A page can then scrub through a finished run
without running the model again; 50 steps of 16 images at 32x32 take about 7 MB.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from ..images import to_uint8
from .sampling import RunStep
from .schedule import NoiseSchedule

MAX_KEPT = 64  # steps kept of a longer run
EPS_RANGE = 3.0  # predicted noise is shown from -3 (black) to 3 (white)


@dataclass
class KeptStep:
    index: int  # 0-based step of the whole run
    t: int  # timestep at which the model was evaluated
    alpha_bar: float  # alpha_bar_t
    stage: int  # 0-based cascade stage
    resolution: int  # image side of the stage
    x_t: np.ndarray  # (B, H, W, 3) uint8: the sample after this step
    x0: np.ndarray  # (B, H, W, 3) uint8: the clean image predicted at t
    eps: np.ndarray  # (B, H, W, 3) uint8: the noise predicted at t, [-EPS_RANGE, EPS_RANGE] -> [0, 255]

    @property
    def sigma(self) -> float:
        """Noise level sigma_t = sqrt(1 - alpha_bar_t) of the model's input."""
        return math.sqrt(1 - self.alpha_bar)

    @property
    def snr(self) -> float:
        return self.alpha_bar / (1 - self.alpha_bar)


@dataclass
class Trajectory:
    schedule: NoiseSchedule
    num_stages: int = 1
    max_kept: int = MAX_KEPT
    num_steps: int = 0  # model evaluations of the run, once it has started
    steps: list[KeptStep] = field(default_factory=list)

    def record(self, steps: Iterator[RunStep]) -> Iterator[RunStep]:
        """Pass the run's steps through, keeping every ceil(num_steps / max_kept)-th one and the last."""
        alpha_bar = self.schedule.alpha_bar.tolist()
        for step in steps:
            self.num_steps = step.num_steps
            every = math.ceil(step.num_steps / self.max_kept)
            if step.index % every == 0 or step.index + 1 == step.num_steps:
                self.steps.append(
                    KeptStep(
                        step.index,
                        step.t,
                        alpha_bar[step.t],
                        step.stage,
                        step.resolution,
                        to_uint8(step.x_t),
                        to_uint8(step.x0),
                        to_uint8(step.eps / EPS_RANGE),
                    )
                )
            yield step

    @property
    def num_images(self) -> int:
        return self.steps[0].x_t.shape[0] if self.steps else 0

    @property
    def image_size(self) -> int:
        """Side of the final images."""
        return self.steps[-1].resolution if self.steps else 0

    def nbytes(self) -> int:
        return sum(s.x_t.nbytes + s.x0.nbytes + s.eps.nbytes for s in self.steps)
