"""Reverse-process samplers as generators: each yields a `Step` after every model evaluation (so a UI
can stream frames and a CLI can draw a progress bar); the last step's x_t is the final image.

A sampler takes a `denoiser(x_t, t) -> output` (guidance already applied, see guidance.py; the output
is what the network predicts: eps unless `prediction` says "v" or "x0"), the noise schedule, the
starting noise x_T and a step count; optionally `t_start`, the timestep x_T stands at (default T-1),
for the narrower noise range of a cascade's conditioned stages. All arithmetic is float32;
coefficients are Python floats computed once, so the loop has no host-device synchronisation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from .rng import ImageRNG
from .schedule import NoiseSchedule

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
SamplerSteps = Iterator["Step"]
DEFAULT_STEPS = {"ddpm": None, "ddim": 50, "dpm++": 20, "dpm++sde": 20}  # None: all T steps


@dataclass
class Step:
    index: int  # 0-based number of this step
    num_steps: int  # model evaluations in the whole run
    t: int  # timestep at which the model was evaluated
    x_t: torch.Tensor  # (B, C, H, W) sample after this step
    x0: torch.Tensor  # (B, C, H, W) clean image predicted at this step
    eps: torch.Tensor | None = None  # (B, C, H, W) noise predicted at this step (x0 and eps imply each other)


def timestep_grid(num_timesteps: int, num_steps: int, t_start: int | None = None) -> list[int]:
    """num_steps evenly spaced timesteps from t_start (default T-1) down, "trailing" spacing (Lin et
    al. 2024, table 2): the first step starts at pure noise and the last one jumps to the clean image.
    All T steps give T-1, ..., 0."""
    span = num_timesteps if t_start is None else t_start + 1
    if not 1 <= span <= num_timesteps:
        raise ValueError(f"t_start must be between 0 and {num_timesteps - 1}, got {t_start}")
    if not 1 <= num_steps <= span:
        raise ValueError(f"steps must be between 1 and {span}, got {num_steps}")
    return [round(span - i * span / num_steps) - 1 for i in range(num_steps)]


def _predict(
    denoiser: Denoiser, schedule: NoiseSchedule, x: torch.Tensor, t: int, clip_x0: bool, prediction: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """The eps and x0 the model's output implies (schedule.eps_and_x0), x0 clipped with clip_x0."""
    t_batch = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
    return schedule.eps_and_x0(denoiser(x, t_batch), x, t_batch, prediction, clip_x0)


def ddpm(
    denoiser: Denoiser,
    schedule: NoiseSchedule,
    x_T: torch.Tensor,
    num_steps: int | None = None,
    *,
    rng: ImageRNG,
    clip_x0: bool = True,
    t_start: int | None = None,
    prediction: str = "eps",
    **_,
) -> SamplerSteps:
    """Ancestral sampling (Ho et al. 2020, Algorithm 2) with sigma_t^2 = beta_t.

    With fewer than T steps the schedule is respaced (Nichol & Dhariwal 2021, section 4):
    beta'_i = 1 - alpha_bar_i / alpha_bar_prev.
    """
    alpha_bar = schedule.alpha_bar.tolist()
    first = schedule.num_timesteps - 1 if t_start is None else t_start
    timesteps = timestep_grid(schedule.num_timesteps, num_steps or first + 1, t_start)  # default: every step
    x = x_T
    for i, t in enumerate(timesteps):
        eps, x0 = _predict(denoiser, schedule, x, t, clip_x0, prediction)
        if i + 1 == len(timesteps):
            x = x0
        else:
            ab_t, ab_prev = alpha_bar[t], alpha_bar[timesteps[i + 1]]
            beta = 1 - ab_t / ab_prev
            # Posterior mean of q(x_{t-1} | x_t, x_0), Ho et al. eq. 7.
            mean = (math.sqrt(ab_prev) * beta / (1 - ab_t)) * x0 + (
                math.sqrt(1 - beta) * (1 - ab_prev) / (1 - ab_t)
            ) * x
            x = mean + math.sqrt(beta) * rng.randn(*x.shape[1:]).to(x.dtype)
        yield Step(i, len(timesteps), t, x, x0, eps)


def ddim(
    denoiser: Denoiser,
    schedule: NoiseSchedule,
    x_T: torch.Tensor,
    num_steps: int,
    *,
    eta: float = 0.0,
    rng: ImageRNG | None = None,
    clip_x0: bool = True,
    t_start: int | None = None,
    prediction: str = "eps",
    **_,
) -> SamplerSteps:
    """DDIM (Song et al. 2021, eq. 12); eta = 0 is deterministic, eta = 1 is ancestral-like."""
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must be between 0 and 1, got {eta}")
    if eta > 0 and rng is None:
        raise ValueError("DDIM with eta > 0 needs an rng for its noise")
    alpha_bar = schedule.alpha_bar.tolist()
    timesteps = timestep_grid(schedule.num_timesteps, num_steps, t_start)
    x = x_T
    for i, t in enumerate(timesteps):
        eps, x0 = _predict(denoiser, schedule, x, t, clip_x0, prediction)
        ab_t = alpha_bar[t]
        ab_prev = alpha_bar[timesteps[i + 1]] if i + 1 < len(timesteps) else 1.0
        # eq. 16: sigma = eta * sqrt((1 - ab_prev) / (1 - ab_t)) * sqrt(1 - ab_t / ab_prev)
        sigma = eta * math.sqrt((1 - ab_prev) / (1 - ab_t) * (1 - ab_t / ab_prev))
        x = math.sqrt(ab_prev) * x0 + math.sqrt(max(1 - ab_prev - sigma**2, 0.0)) * eps
        if sigma > 0:
            x = x + sigma * rng.randn(*x.shape[1:]).to(x.dtype)
        yield Step(i, len(timesteps), t, x, x0, eps)


def dpm_solver_pp_2m(
    denoiser: Denoiser,
    schedule: NoiseSchedule,
    x_T: torch.Tensor,
    num_steps: int,
    *,
    noisy_steps: int,
    rng: ImageRNG | None = None,
    clip_x0: bool = True,
    t_start: int | None = None,
    prediction: str = "eps",
) -> SamplerSteps:
    """DPM-Solver++(2M) in data prediction, in lambda = log(alpha / sigma), h = lambda_s - lambda_t
    (Lu et al. 2022): the first `noisy_steps` steps solve the SDE, the others the probability-flow ODE.
      ODE (Algorithm 2): x_s = (sigma_s / sigma_t) x_t + alpha_s (1 - e^-h) D
      SDE (section 4):   x_s = (sigma_s / sigma_t) e^-h x_t + alpha_s (1 - e^-2h) D + sigma_s sqrt(1 - e^-2h) z
    D = x0 + (x0 - x0_prev) / (2 r), r = h_prev / h, is the second-order multistep correction (the
    midpoint form of k-diffusion's sample_dpmpp_2m_sde; D = x0 on the first step). The last step goes to
    sigma = 0 with first order, which returns the final x0 prediction."""
    if noisy_steps and rng is None:
        raise ValueError("a stochastic DPM-Solver++ step needs an rng for its noise")
    alpha_bar = schedule.alpha_bar.tolist()
    timesteps = timestep_grid(schedule.num_timesteps, num_steps, t_start)
    alpha = [math.sqrt(ab) for ab in alpha_bar]
    sigma = [math.sqrt(1 - ab) for ab in alpha_bar]
    lam = [math.log(a / s) for a, s in zip(alpha, sigma)]
    x, x0_prev, h_prev = x_T, None, None
    for i, t in enumerate(timesteps):
        eps, x0 = _predict(denoiser, schedule, x, t, clip_x0, prediction)
        if i + 1 == len(timesteps):
            x = x0
        else:
            s = timesteps[i + 1]
            h = lam[s] - lam[t]
            d = x0 if x0_prev is None else x0 + (h / (2 * h_prev)) * (x0 - x0_prev)
            if i < noisy_steps:
                x = (sigma[s] / sigma[t] * math.exp(-h)) * x - (alpha[s] * math.expm1(-2 * h)) * d
                x = x + sigma[s] * math.sqrt(-math.expm1(-2 * h)) * rng.randn(*x.shape[1:]).to(x.dtype)
            else:
                x = (sigma[s] / sigma[t]) * x - (alpha[s] * math.expm1(-h)) * d
            x0_prev, h_prev = x0, h
        yield Step(i, len(timesteps), t, x, x0, eps)


def dpm_solver_pp(
    denoiser: Denoiser,
    schedule: NoiseSchedule,
    x_T: torch.Tensor,
    num_steps: int,
    *,
    clip_x0: bool = True,
    t_start: int | None = None,
    prediction: str = "eps",
    **_,
) -> SamplerSteps:
    """DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2), deterministic: the probability-flow ODE."""
    return dpm_solver_pp_2m(
        denoiser, schedule, x_T, num_steps, noisy_steps=0, clip_x0=clip_x0, t_start=t_start, prediction=prediction
    )


def dpm_solver_pp_sde(
    denoiser: Denoiser,
    schedule: NoiseSchedule,
    x_T: torch.Tensor,
    num_steps: int,
    *,
    rng: ImageRNG,
    clip_x0: bool = True,
    t_start: int | None = None,
    prediction: str = "eps",
    **_,
) -> SamplerSteps:
    """SDE-DPM-Solver++(2M) (Lu et al. 2022, section 4): every step solves the reverse SDE, drawing
    fresh noise from the rng, so the image does not follow x_T alone."""
    return dpm_solver_pp_2m(
        denoiser,
        schedule,
        x_T,
        num_steps,
        noisy_steps=num_steps,
        rng=rng,
        clip_x0=clip_x0,
        t_start=t_start,
        prediction=prediction,
    )


SAMPLERS = {"ddpm": ddpm, "ddim": ddim, "dpm++": dpm_solver_pp, "dpm++sde": dpm_solver_pp_sde}
SAMPLER_NAMES = {
    "ddpm": "DDPM",
    "ddim": "DDIM",
    "dpm++": "DPM-Solver++",
    "dpm++sde": "DPM-Solver++ SDE",
}  # as the app and the tables show them


def check_sampler(sampler: str, num_steps: int | None, eta: float, num_timesteps: int) -> int:
    """Raise ValueError with a one-line message for bad settings; return the step count to use
    (the sampler's default for None)."""
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}: use one of {', '.join(SAMPLERS)}")
    if num_steps is None:
        num_steps = DEFAULT_STEPS[sampler] or num_timesteps
    if not 1 <= num_steps <= num_timesteps:
        raise ValueError(f"steps must be between 1 and {num_timesteps}, got {num_steps}")
    if not math.isfinite(eta) or not 0 <= eta <= 1:
        raise ValueError(f"eta must be between 0 and 1, got {eta}")
    return num_steps
