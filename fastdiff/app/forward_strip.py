"""The forward process of one picture as a strip: x_t at timesteps evenly spaced in log-SNR, so that
every step of the strip removes about as much signal as the one before (evenly spaced t would spend
most of the strip on pictures that are already noise), and the default t of the Learn tab's slider."""

from __future__ import annotations

import numpy as np
import torch

from ..diffusion.schedule import NoiseSchedule
from ..images import grid
from .learn import NOISE_SEED, picture_to_model

STRIP_STEPS = 8  # noised pictures in the strip
# noise std a quarter of the signal's scale: about half the spread of CIFAR-10 pixels (std ~0.5 in
# [-1, 1]), where the picture still shows through; at SNR 1 it is lost
RECOGNISABLE_SNR = 16.0


def snr_spaced_timesteps(schedule: NoiseSchedule, count: int = STRIP_STEPS) -> list[int]:
    """`count` timesteps from 0 to T-1 whose log-SNR is evenly spaced (nearest t each, no repeats)."""
    log_snr = schedule.snr().double().log()
    targets = torch.linspace(log_snr[0].item(), log_snr[-1].item(), count, dtype=torch.float64)
    return sorted({int((log_snr - target).abs().argmin()) for target in targets})


def recognisable_t(schedule: NoiseSchedule) -> int:
    """The last timestep whose SNR is at least RECOGNISABLE_SNR (0 when none is)."""
    return max(0, int((schedule.snr() >= RECOGNISABLE_SNR).sum()) - 1)


def forward_strip(picture: np.ndarray, schedule: NoiseSchedule) -> tuple[np.ndarray, str]:
    """x_0 and x_t ~ q(x_t | x_0) at the log-SNR-spaced timesteps, one row (4x), same noise at every t;
    and a caption with each t and its SNR."""
    x0 = picture_to_model(picture)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(NOISE_SEED))
    timesteps = snr_spaced_timesteps(schedule)
    x_t = schedule.q_sample(x0.expand(len(timesteps), -1, -1, -1), torch.tensor(timesteps), noise)
    snr = schedule.snr()
    labels = ", ".join(f"t = {t} (SNR {snr[t].item():.2g})" for t in timesteps)
    return grid(torch.cat([x0, x_t]), columns=len(timesteps) + 1, scale=4), f"x_0, then {labels}"
