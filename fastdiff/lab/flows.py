"""What a trained 2D denoiser does: the paths of points from noise to data under each of the project's
samplers, and the predicted-noise field over the plane at one timestep, with classifier-free guidance
towards one class. The samplers and the guidance wrapper are the image ones, run on (N, 2) points."""

from __future__ import annotations

import torch

from ..diffusion.guidance import GuidedDenoiser
from ..diffusion.rng import ImageRNG
from ..diffusion.samplers import SAMPLERS
from ..diffusion.schedule import NoiseSchedule
from .toy2d import ToyDenoiser


def denoiser(model: ToyDenoiser, label: int | None, guidance: float, n: int) -> GuidedDenoiser:
    """The guided denoiser for n points of class `label` (None: unconditional, guidance ignored)."""
    labels = None if label is None else torch.full((n,), int(label))
    return GuidedDenoiser(model, labels, guidance)


def paths(
    model: ToyDenoiser,
    schedule: NoiseSchedule,
    sampler: str,
    num_steps: int,
    n: int,
    label: int | None = None,
    guidance: float = 0.0,
    seed: int = 0,
) -> torch.Tensor:
    """(num_steps + 1, n, 2): the noise x_T, then x_t after every step; point i starts from seed + i, so
    every sampler starts from the same noise."""
    rng = ImageRNG(list(range(seed, seed + n)))
    x_T = rng.randn(2)
    guided = denoiser(model, label, guidance, n)
    steps = SAMPLERS[sampler](guided, schedule, x_T, num_steps, rng=rng, clip_x0=False)  # points may leave [-1, 1]
    return torch.stack([x_T] + [step.x_t for step in steps])


def noise_field(
    model: ToyDenoiser,
    schedule: NoiseSchedule,
    t: int,
    label: int | None = None,
    guidance: float = 0.0,
    extent: float = 1.6,
    count: int = 17,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(count * count, 2) grid points over [-extent, extent]^2 and the noise eps predicted there at t;
    -eps points towards the data (it is the score times -sigma_t)."""
    axis = torch.linspace(-extent, extent, count)
    grid = torch.cartesian_prod(axis, axis)
    eps = denoiser(model, label, guidance, len(grid))(grid, torch.full((len(grid),), t))
    return grid, eps
