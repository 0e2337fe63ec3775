"""The Learn tab's work: the forward process q(x_t | x_0) applied to one picture, and plots of the
noise schedule, with a short explanation of the samplers and of guidance."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image

from ..data import prepare_image, to_model_range
from ..diffusion.schedule import NoiseSchedule
from ..images import grid

NOISE_SEED = 0  # the same noise at every t, so that moving the slider only changes the mix

EXPLANATION = """
**Forward process.** Training takes a real image x_0 and mixes it with Gaussian noise:
x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps. As t grows, alpha_bar_t falls from 1 towards 0,
so the picture fades into pure noise. The network learns to guess eps from x_t, t and the class.

**DDPM** walks back one small step at a time and adds a little fresh noise at every step; it needs
hundreds of steps and every run with another seed gives another image.

**DDIM** uses the same network but jumps many timesteps at once along a deterministic path (eta = 0):
50 steps give images close to DDPM's, the same seed always gives the same image, and eta > 0 mixes
some of DDPM's randomness back in. **DPM-Solver++** follows that same path with a second-order
solver, so 10-20 steps are enough.

**Guidance** (w) runs the network twice per step, with and without the class, and pushes the result
away from the class-free guess: eps = (1 + w) eps(x_t, class) - w eps(x_t, no class). A larger w
gives images that look more like their class and less varied; w = 0 turns guidance off.
"""


def picture_to_model(picture: np.ndarray, image_size: int = 32) -> torch.Tensor:
    """An uploaded or generated (H, W, 3) uint8 picture -> (1, 3, size, size) in [-1, 1], prepared
    like training data (center crop, resize)."""
    array = prepare_image(Image.fromarray(picture.astype(np.uint8)), image_size, 3, "picture")
    return to_model_range(torch.tensor(array)[None])


def noised(picture: np.ndarray, schedule: NoiseSchedule, t: int) -> tuple[np.ndarray, str]:
    """x_0 and x_t ~ q(x_t | x_0) side by side (8x), and a caption with the mix at t."""
    if not 0 <= t < schedule.num_timesteps:
        raise ValueError(f"t must be between 0 and {schedule.num_timesteps - 1} for this checkpoint, got {t}")
    x0 = picture_to_model(picture)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(NOISE_SEED))
    x_t = schedule.q_sample(x0, torch.tensor([t]), noise)
    alpha_bar = schedule.alpha_bar[t].item()
    caption = (
        f"t = {t}: x_t = {alpha_bar**0.5:.3f} x_0 + {(1 - alpha_bar) ** 0.5:.3f} eps "
        f"(alpha_bar = {alpha_bar:.4f}, SNR = {alpha_bar / (1 - alpha_bar):.3g})"
    )
    return grid(torch.cat([x0, x_t]), columns=2, scale=8), caption


def schedule_figure(schedule: NoiseSchedule, t: int | None = None) -> Figure:
    """beta_t, alpha_bar_t and the SNR over t, with a marker at t."""
    figure = Figure(figsize=(9, 2.6), layout="constrained")
    steps = np.arange(schedule.num_timesteps)
    curves = [
        ("beta_t", schedule.betas, "linear"),
        ("alpha_bar_t", schedule.alpha_bar, "linear"),
        ("SNR_t (log scale)", schedule.snr(), "log"),
    ]
    for index, (title, values, scale) in enumerate(curves, 1):
        axis = figure.add_subplot(1, 3, index)
        axis.plot(steps, values.cpu().numpy())
        axis.set(title=title, xlabel="t", yscale=scale)
        if t is not None and 0 <= t < schedule.num_timesteps:
            axis.axvline(t, color="tab:red", linewidth=0.8)
    return figure
