"""Distillation losses, each a callable `(model, schedule, x0, labels, generator, label_dropout) -> loss`
like losses.py's, holding its frozen teacher (Meng et al. 2023, "On distillation of guided diffusion
models"):

- stage one, `GuidanceDistillationLoss`: a student that takes the guidance weight w as input learns
  the teacher's guided prediction (1 + w) eps(x_t, c) - w eps(x_t, null) in one forward pass, for w
  uniform over the student's guidance_range and t uniform over all timesteps;
- stage two, `ProgressiveDistillationLoss` (Salimans & Ho 2022, Algorithm 2): two deterministic DDIM
  steps of the teacher on its N-step grid become one student step on the N/2-step grid. The grids are
  timestep_grid's trailing ones, which nest: grid(N)[2j] = grid(N/2)[j].

The student's loss is the MSE in its own parameterization (v: Salimans & Ho's "SNR + 1" weighting).
All randomness comes from the given generator, so a resumed run repeats exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .guidance import guided_output
from .losses import noisy_batch, unwrap
from .samplers import timestep_grid
from .schedule import NoiseSchedule


def guidance_weights(model, n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """(n,) weights w uniform over the student's guidance_range."""
    low, high = unwrap(model).config.guidance_range
    return low + (high - low) * torch.rand(n, generator=generator, device=device)


class GuidanceDistillationLoss:
    def __init__(self, teacher: torch.nn.Module):
        """teacher: any class-conditional network (eval mode, frozen); its prediction type may differ
        from the student's."""
        self.teacher = teacher.eval().requires_grad_(False)

    def __call__(self, model, schedule: NoiseSchedule, x0, labels, generator, label_dropout) -> torch.Tensor:
        student = unwrap(model)
        t = torch.randint(0, schedule.num_timesteps, (x0.shape[0],), generator=generator, device=x0.device)
        x_t, _, labels = noisy_batch(schedule, x0, t, labels, generator, label_dropout, student.null_class)
        w = guidance_weights(model, x0.shape[0], generator, x0.device)
        with torch.no_grad():
            output = guided_output(self.teacher, x_t, t, labels, w).float()
        eps, x0_pred = schedule.eps_and_x0(output, x_t, t, self.teacher.config.prediction)
        target = schedule.prediction_target(eps, x0_pred, t, student.config.prediction)
        return F.mse_loss(model(x_t, t, labels, guidance=w).float(), target)


class ProgressiveDistillationLoss:
    def __init__(self, teacher: torch.nn.Module, schedule: NoiseSchedule, teacher_steps: int, clip_x0: bool = True):
        """teacher: a guidance-embedding network sampled with DDIM in teacher_steps steps (even), x0
        clipped as the samplers clip it."""
        if teacher_steps < 2 or teacher_steps % 2:
            raise ValueError(f"progressive distillation halves an even step count, got {teacher_steps}")
        self.teacher = teacher.eval().requires_grad_(False)
        self.teacher_steps, self.clip_x0 = teacher_steps, clip_x0
        device = schedule.alpha_bar.device
        # The teacher's grid, then -1: the clean image, where the extended alpha_bar is 1.
        self.grid = torch.tensor(timestep_grid(schedule.num_timesteps, teacher_steps) + [-1], device=device)
        self.alpha_bar = torch.cat([schedule.alpha_bar, torch.ones(1, device=device)])

    def _at(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(alpha, sigma) at timesteps t (-1: clean), shaped (B, 1, 1, 1)."""
        alpha_bar = self.alpha_bar[t].view(-1, 1, 1, 1)
        return alpha_bar.sqrt(), (1 - alpha_bar).sqrt()

    def _ddim_step(self, schedule, x, t, t_next, labels, w) -> torch.Tensor:
        """One deterministic teacher DDIM step (Song et al. 2021, eq. 12, eta = 0) from t to t_next."""
        output = guided_output(self.teacher, x, t, labels, w).float()
        eps, x0 = schedule.eps_and_x0(output, x, t, self.teacher.config.prediction, self.clip_x0)
        alpha, sigma = self._at(t_next)
        return alpha * x0 + sigma * eps

    @torch.no_grad()
    def target(self, schedule: NoiseSchedule, x_t, index, labels, w) -> tuple[torch.Tensor, torch.Tensor]:
        """The (eps, x0) with which one DDIM step from the student's grid point `index` (B,) lands where
        two teacher steps land (Salimans & Ho 2022, Algorithm 2):
        x0~ = (x_t'' - (sigma_t'' / sigma_t) x_t) / (alpha_t'' - (sigma_t'' / sigma_t) alpha_t)."""
        t, t_mid, t_next = self.grid[2 * index], self.grid[2 * index + 1], self.grid[2 * index + 2]
        x_mid = self._ddim_step(schedule, x_t, t, t_mid, labels, w)
        x_next = self._ddim_step(schedule, x_mid, t_mid, t_next, labels, w)
        (alpha, sigma), (alpha_next, sigma_next) = self._at(t), self._at(t_next)
        ratio = sigma_next / sigma
        x0 = (x_next - ratio * x_t) / (alpha_next - ratio * alpha)
        return (x_t - alpha * x0) / sigma, x0

    def __call__(self, model, schedule: NoiseSchedule, x0, labels, generator, label_dropout) -> torch.Tensor:
        student = unwrap(model)
        n = x0.shape[0]
        index = torch.randint(0, self.teacher_steps // 2, (n,), generator=generator, device=x0.device)
        t = self.grid[2 * index]
        x_t, _, labels = noisy_batch(schedule, x0, t, labels, generator, label_dropout, student.null_class)
        w = guidance_weights(model, n, generator, x0.device)
        eps, x0_target = self.target(schedule, x_t, index, labels, w)
        target = schedule.prediction_target(eps, x0_target, t, student.config.prediction)
        return F.mse_loss(model(x_t, t, labels, guidance=w).float(), target)
