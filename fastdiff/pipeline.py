"""From a model and user settings to a stream of sampler steps: validates the settings, draws the
seeded starting noise and wires guidance to the chosen sampler. Used by the CLI, the app, the
trainer's previews and the evaluator."""
from __future__ import annotations

import math

import torch

from .guidance import GuidedDenoiser
from .samplers import SAMPLERS, ImageRNG, SamplerSteps
from .schedule import NoiseSchedule
from .unet import UNet

DEFAULT_STEPS = {"ddpm": None, "ddim": 50, "dpm++": 20}  # None: all T steps


def check_settings(sampler: str, num_steps: int | None, guidance: float, eta: float,
                   num_timesteps: int) -> int:
    """Raise ValueError with a one-line message for bad settings; return the step count to use."""
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}: use one of {', '.join(SAMPLERS)}")
    if num_steps is None:
        num_steps = DEFAULT_STEPS[sampler] or num_timesteps
    if not 1 <= num_steps <= num_timesteps:
        raise ValueError(f"steps must be between 1 and {num_timesteps}, got {num_steps}")
    if not math.isfinite(guidance) or guidance < 0:
        raise ValueError(f"guidance weight must be a finite number >= 0, got {guidance}")
    if not math.isfinite(eta) or not 0 <= eta <= 1:
        raise ValueError(f"eta must be between 0 and 1, got {eta}")
    return num_steps


def sample_steps(model: UNet, schedule: NoiseSchedule, class_labels: torch.Tensor | None,
                 seeds: list[int], sampler: str = "ddim", num_steps: int | None = None,
                 guidance: float = 2.0, eta: float = 0.0, precision: str = "fp32") -> SamplerSteps:
    """A generator of sampler steps for len(seeds) images; returns images in [-1, 1]."""
    num_steps = check_settings(sampler, num_steps, guidance, eta, schedule.num_timesteps)
    device = next(model.parameters()).device
    config = model.config
    rng = ImageRNG(seeds, device)
    x_T = rng.randn(config.image_channels, config.image_size, config.image_size)
    denoiser = GuidedDenoiser(model, class_labels, guidance, precision)
    return SAMPLERS[sampler](denoiser, schedule.to(device), x_T, num_steps, eta=eta, rng=rng)
