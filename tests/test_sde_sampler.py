"""SDE-DPM-Solver++(2M): on the exact denoiser of a Gaussian it reproduces the Gaussian, it draws its noise
from the per-image rngs, and its deterministic twin is the plain DPM-Solver++."""

import pytest
import torch
from helpers import MU, STD, run, sample_gaussian

from fastdiff.config import DiffusionConfig
from fastdiff.diffusion.rng import ImageRNG
from fastdiff.diffusion.samplers import dpm_solver_pp, dpm_solver_pp_2m
from fastdiff.diffusion.sampling import final_images
from fastdiff.diffusion.schedule import NoiseSchedule


@pytest.mark.parametrize("steps", [20, 50])
def test_sde_solver_recovers_a_known_gaussian(steps):
    x = sample_gaussian("dpm++sde", steps)
    assert x.mean().item() == pytest.approx(MU, abs=0.01)
    assert x.std().item() == pytest.approx(STD, rel=0.05)


def test_wrong_coefficients_would_be_caught_by_the_sde_test():
    x = sample_gaussian("dpm++sde", 20, scale=1.1)
    assert abs(x.std().item() - STD) > 0.05 * STD or abs(x.mean().item() - MU) > 0.01


def test_sde_solver_uses_fresh_noise_and_each_image_its_own_seed(tiny_model):  # noqa: F811
    grid, alone = run(tiny_model, [5, 6, 7], "dpm++sde"), run(tiny_model, [6], "dpm++sde")
    assert torch.allclose(grid[1], alone[0], atol=1e-5)
    assert torch.equal(grid, run(tiny_model, [5, 6, 7], "dpm++sde"))
    assert not torch.allclose(grid, run(tiny_model, [5, 6, 7], "dpm++"), atol=1e-3)  # not the ODE's images


def test_no_noisy_steps_is_the_ode_solver_and_needs_no_rng():
    schedule = NoiseSchedule(DiffusionConfig(num_timesteps=50))
    denoiser = lambda x, t: 0.3 * x  # noqa: E731
    x_T = ImageRNG([0, 1]).randn(1, 4, 4)
    ode = final_images(dpm_solver_pp(denoiser, schedule, x_T, 8))
    assert torch.equal(ode, final_images(dpm_solver_pp_2m(denoiser, schedule, x_T, 8, noisy_steps=0)))
    with pytest.raises(ValueError, match="needs an rng"):
        next(dpm_solver_pp_2m(denoiser, schedule, x_T, 8, noisy_steps=1))
