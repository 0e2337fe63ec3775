"""The DDPM forward (noising) process: betas, alpha_bar, q(x_t | x_0) and the conversions between
the network parameterizations eps, x0 and v = sqrt(alpha_bar) eps - sqrt(1 - alpha_bar) x0 (Salimans &
Ho 2022, section 4 and appendix D).

Ho et al. 2020, eq. 4: q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I).
Timesteps are 0-based: index t in [0, T) holds beta_{t+1} of the paper. Knows nothing of networks.
"""

from __future__ import annotations

import math

import torch

from ..config import DiffusionConfig

# alpha_bar at the last timestep of a zero-terminal-SNR schedule: 0 in theory; this keeps log-SNR (which the
# DPM-Solver samplers step in) finite, as diffusers does
TERMINAL_ALPHA_BAR = 2.0**-24


def make_betas(config: DiffusionConfig) -> torch.Tensor:
    betas = schedule_betas(config)
    if not config.zero_terminal_snr:
        return betas
    # Lin et al. 2024, Algorithm 1: shift and scale sqrt(alpha_bar) to end at 0, keeping its first value
    root = torch.cumprod(1 - betas, dim=0).sqrt()
    first, last = root[0], root[-1]
    alpha_bar = ((root - last) * first / (first - last)).square()
    alpha_bar[-1] = TERMINAL_ALPHA_BAR
    return 1 - alpha_bar / torch.cat([torch.ones(1, dtype=alpha_bar.dtype), alpha_bar[:-1]])


def schedule_betas(config: DiffusionConfig) -> torch.Tensor:
    T = config.num_timesteps
    if config.schedule == "linear":
        return torch.linspace(config.beta_start, config.beta_end, T, dtype=torch.float64)
    # Cosine schedule (Nichol & Dhariwal 2021, eq. 17), betas clipped at 0.999.
    s = 0.008
    steps = torch.arange(T + 1, dtype=torch.float64) / T
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    alpha_bar = f / f[0]
    return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=0.999)


class NoiseSchedule:
    """Precomputed per-timestep constants of the forward process, as float32 tensors of shape (T,)."""

    def __init__(self, config: DiffusionConfig, device: torch.device | str = "cpu"):
        self.config = config
        self.num_timesteps = config.num_timesteps
        betas = make_betas(config)
        alpha_bar = torch.cumprod(1 - betas, dim=0)
        self.betas = betas.float().to(device)
        self.alpha_bar = alpha_bar.float().to(device)

    def to(self, device) -> NoiseSchedule:
        return NoiseSchedule(self.config, device)

    def snr(self) -> torch.Tensor:
        """Signal-to-noise ratio alpha_bar / (1 - alpha_bar) per timestep."""
        return self.alpha_bar / (1 - self.alpha_bar)

    def _at(self, values: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """values[t] shaped (B, 1, ..., 1) to broadcast over a batch like x: images (B, C, H, W) or
        points (B, D)."""
        return values[t].view(-1, *[1] * (x.dim() - 1))

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Draw x_t ~ q(x_t | x_0) given the noise: sqrt(alpha_bar) x0 + sqrt(1 - alpha_bar) eps."""
        alpha_bar = self._at(self.alpha_bar, t, x0)
        return alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * noise

    def predict_x0(self, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Invert q_sample for x0 given the (predicted) noise."""
        alpha_bar = self._at(self.alpha_bar, t, x_t)
        return (x_t - (1 - alpha_bar).sqrt() * eps) / alpha_bar.sqrt()

    def predict_eps(self, x_t: torch.Tensor, t: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """Invert q_sample for the noise given the (predicted) clean image."""
        alpha_bar = self._at(self.alpha_bar, t, x_t)
        return (x_t - alpha_bar.sqrt() * x0) / (1 - alpha_bar).sqrt()

    def eps_and_x0(
        self, output: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, prediction: str, clip_x0: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The eps and x0 a network output implies, whatever it predicts (every sampler goes through
        here); with clip_x0, x0 is clamped to the data range [-1, 1] and eps recomputed to match."""
        if prediction == "eps":
            eps, x0 = output, self.predict_x0(x_t, t, output)
        elif prediction == "x0":
            eps, x0 = self.predict_eps(x_t, t, output), output
        elif prediction == "v":  # with alpha^2 + sigma^2 = 1: x0 = alpha x_t - sigma v, eps = sigma x_t + alpha v
            alpha_bar = self._at(self.alpha_bar, t, x_t)
            alpha, sigma = alpha_bar.sqrt(), (1 - alpha_bar).sqrt()
            eps, x0 = sigma * x_t + alpha * output, alpha * x_t - sigma * output
        else:
            raise ValueError(f"unknown prediction {prediction!r}")
        if clip_x0:
            x0 = x0.clamp(-1, 1)
            eps = self.predict_eps(x_t, t, x0)
        return eps, x0

    def prediction_target(self, eps: torch.Tensor, x0: torch.Tensor, t: torch.Tensor, prediction: str) -> torch.Tensor:
        """The output a network of this parameterization should give for (eps, x0): eps_and_x0 inverted."""
        if prediction == "eps":
            return eps
        if prediction == "x0":
            return x0
        alpha_bar = self._at(self.alpha_bar, t, x0)
        return alpha_bar.sqrt() * eps - (1 - alpha_bar).sqrt() * x0
