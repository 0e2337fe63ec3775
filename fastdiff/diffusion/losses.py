"""Training losses, each a small callable `(model, schedule, x0, labels, generator, label_dropout) -> loss`
(EDM's loss.py): the plain denoising loss, and the LowDiff cascade loss built from it.

All randomness comes from the given generator, which lives on the images' device (no noise is copied
to the device per step), so a run reseeding it per step repeats exactly when resumed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..nn.cascade import downsample, upsample_condition
from .schedule import NoiseSchedule


def unwrap(model) -> torch.nn.Module:
    """The network inside a DistributedDataParallel wrapper (or the network itself)."""
    return model.module if hasattr(model, "module") else model


def diffusion_loss(
    model,
    schedule: NoiseSchedule,
    x0: torch.Tensor,
    labels: torch.Tensor,
    generator: torch.Generator,
    label_dropout: float,
    min_snr_gamma: float = 0.0,
    **model_kwargs,
) -> torch.Tensor:
    """Ho et al. 2020, Algorithm 1: MSE between the noise and its prediction at a uniform t, with
    labels replaced by the null class at rate label_dropout (classifier-free guidance training).
    A v- or x0-predicting network is compared with its own target instead of the noise. With
    min_snr_gamma > 0 each sample's error is weighted as Min-SNR-gamma (Hang et al. 2023) weights it.
    model_kwargs (a cascade's `condition`) go to the network unchanged."""
    t = torch.randint(0, schedule.num_timesteps, (x0.shape[0],), generator=generator, device=x0.device)
    network = unwrap(model)
    x_t, noise, labels = noisy_batch(schedule, x0, t, labels, generator, label_dropout, network.null_class)
    prediction = network.config.prediction
    target = schedule.prediction_target(noise, x0, t, prediction)
    output = model(x_t, t, labels, **model_kwargs).float()
    if not min_snr_gamma:
        return F.mse_loss(output, target)
    errors = (output - target).square().mean(dim=tuple(range(1, x0.dim())))
    return (min_snr_weight(schedule, t, prediction, min_snr_gamma) * errors).mean()


def min_snr_weight(schedule: NoiseSchedule, t: torch.Tensor, prediction: str, gamma: float) -> torch.Tensor:
    """Min-SNR-gamma (Hang et al. 2023, eq. 6 and its table of equivalents): the x0 loss weighted by
    min(SNR, gamma), written for the network's own target. eps = x0 error / SNR, v = x0 error / (SNR + 1)."""
    snr = schedule.snr()[t]
    clipped = snr.clamp(max=gamma)
    return {"eps": clipped / snr, "v": clipped / (snr + 1), "x0": clipped}[prediction]


def noisy_batch(
    schedule: NoiseSchedule,
    x0: torch.Tensor,
    t: torch.Tensor,
    labels: torch.Tensor,
    generator: torch.Generator,
    label_dropout: float,
    null_class: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The training input at timesteps t: (x_t, its noise, labels with a share label_dropout replaced
    by the null class)."""
    noise = torch.randn(x0.shape, generator=generator, device=x0.device)
    drop = torch.rand(x0.shape[0], generator=generator, device=x0.device) < label_dropout
    return schedule.q_sample(x0, t, noise), noise, torch.where(drop, torch.full_like(labels, null_class), labels)


def noisy_condition(
    schedule: NoiseSchedule, low: torch.Tensor, size: int, generator: torch.Generator, dropout: float
) -> torch.Tensor:
    """Truncation augmentation (CDM, Ho et al. 2022, section 4.2; LowDiff section 3.2): the clean
    low-resolution image diffused to a uniform random level s with noise independent of the
    high-resolution noise, z_s = sqrt(alpha_bar_s) x0_low + sqrt(1 - alpha_bar_s) eps', then upsampled.
    The sampler's truncated stages hand over exactly such a z_s. A share `dropout` is zeroed."""
    device = low.device
    n = low.shape[0]
    s = torch.randint(0, schedule.num_timesteps, (n,), generator=generator, device=device)
    noise = torch.randn(low.shape, generator=generator, device=device)
    keep = (torch.rand(n, generator=generator, device=device) >= dropout).to(low.dtype).view(-1, 1, 1, 1)
    return upsample_condition(schedule.q_sample(low, s, noise), size) * keep


def cascade_loss(
    model,
    schedule: NoiseSchedule,
    x0: torch.Tensor,
    labels: torch.Tensor,
    generator: torch.Generator,
    label_dropout: float,
    min_snr_gamma: float = 0.0,
) -> torch.Tensor:
    """LowDiff Algorithm 1: the sum over resolutions of the plain loss at that resolution. The lowest
    is an ordinary class-conditional model; each higher one is conditioned on the noisy, upsampled
    next-lower image. Each term only runs (and so only trains) the blocks of its resolution."""
    cascade = unwrap(model).cascade
    lowest = downsample(x0, cascade.resolutions[0])
    loss = diffusion_loss(model, schedule, lowest, labels, generator, label_dropout, min_snr_gamma)
    for low, size in zip(cascade.resolutions, cascade.resolutions[1:]):
        condition = noisy_condition(schedule, downsample(x0, low), size, generator, cascade.condition_dropout)
        loss = loss + diffusion_loss(
            model, schedule, downsample(x0, size), labels, generator, label_dropout, min_snr_gamma, condition=condition
        )
    return loss
