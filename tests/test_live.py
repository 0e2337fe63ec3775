"""The Live tab on tiny students: the noise between two seeds (its endpoints are the seeds' noises, its
norm that of a Gaussian sample), an update equals a direct generation at the same values, the fastest
shipped student draws, bad values get one line."""

import math

import numpy as np
import pytest
import torch
from gradio_client.exceptions import AppError
from helpers import make_tiny_checkpoint, served_client
from PIL import Image

from fastdiff.app.backend import Backend
from fastdiff.app.live import Live
from fastdiff.diffusion.rng import ImageRNG
from fastdiff.diffusion.sampling import make_plan, noise_between, sample, sample_steps, slerp
from fastdiff.diffusion.schedule import NoiseSchedule
from fastdiff.images import grid
from fastdiff.nn.checkpoint import load_model

SHAPE = (3, 32, 32)


def test_the_noise_between_two_seeds_starts_and_ends_at_their_noises():
    first, second = ImageRNG([3, 4]).randn(*SHAPE), ImageRNG([10, 11]).randn(*SHAPE)
    assert torch.equal(noise_between([3, 4], [10, 11], 0.0, *SHAPE), first)
    assert torch.equal(noise_between([3, 4], [10, 11], 1.0, *SHAPE), second)


def test_the_noise_between_keeps_the_norm_of_a_gaussian_sample():
    d = math.prod(SHAPE)
    for fraction in (0.25, 0.5, 0.75):
        norms = noise_between(list(range(8)), list(range(100, 108)), fraction, *SHAPE).flatten(1).norm(dim=1)
        assert (norms - math.sqrt(d)).abs().max() < 4  # a Gaussian sample's norm: sqrt(d) +- 0.71 per sd
    straight = (ImageRNG([0]).randn(*SHAPE) + ImageRNG([100]).randn(*SHAPE)) / 2
    assert straight.norm() < 0.8 * math.sqrt(d)  # what the straight line would give


def test_slerp_of_parallel_noise_is_the_straight_line():
    a = torch.randn(2, 5, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(slerp(a, 2 * a, 0.5), 1.5 * a)


@pytest.fixture
def live(tmp_path):
    checkpoints = tmp_path / "checkpoints"
    make_tiny_checkpoint(checkpoints / "cifar10-base")
    for steps in (4, 2):
        options = dict(guidance_embedding=True, distilled_steps=steps, prediction="v")
        make_tiny_checkpoint(checkpoints / f"student-{steps}", **options)
    return Live(Backend(checkpoints, tmp_path / "runs", tmp_path / "shared.zip", tmp_path))


def direct(folder, class_index, guidance, seeds):
    model, diffusion_config, _ = load_model(folder)
    schedule = NoiseSchedule(diffusion_config)
    plan = make_plan(model, schedule, "ddim", model.config.distilled_steps, guidance)
    return sample(model, schedule, torch.full((len(seeds),), class_index), seeds, plan, "fp32")


def test_an_update_equals_a_direct_generation_at_its_values(live, tmp_path):
    live.backend.precision = "fp32"
    path, caption, shown = live.update("c", 1.5, 7, 20, 0.0, "4")
    assert shown == path and "`student-2`, 2 steps" in caption and "w = 1.5" in caption
    picture = np.asarray(Image.open(path))
    expected = grid(direct(tmp_path / "checkpoints" / "student-2", 2, 1.5, [7, 8, 9, 10]), pad=0, scale=4)
    assert np.array_equal(picture, expected)
    path_at_end, _, _ = live.update("c", 1.5, 7, 20, 1.0, "4", shown)
    assert not (tmp_path / path).exists() or path == path_at_end  # the previous file is removed
    expected = grid(direct(tmp_path / "checkpoints" / "student-2", 2, 1.5, [20, 21, 22, 23]), pad=0, scale=4)
    assert np.array_equal(np.asarray(Image.open(path_at_end)), expected)


def test_start_noise_from_the_seeds_changes_nothing(live, tmp_path):
    model, diffusion_config, _ = load_model(tmp_path / "checkpoints" / "student-4")
    schedule = NoiseSchedule(diffusion_config)
    plan = make_plan(model, schedule, "ddim", 4, 2.0)
    labels, seeds = torch.tensor([1, 2]), [5, 6]
    plain = [s.x_t for s in sample_steps(model, schedule, labels, seeds, plan)]
    given = [
        s.x_t for s in sample_steps(model, schedule, labels, seeds, plan, start_noise=ImageRNG(seeds).randn(*SHAPE))
    ]
    assert all(torch.equal(a, b) for a, b in zip(plain, given))


@pytest.mark.parametrize(
    "values, message",
    [
        (("c", 1.0, 0, 1, 1.5, "4"), "between the two seeds must be a number from 0 to 1, got 1.5"),
        (("c", 1.0, 0, 1, float("nan"), "4"), "between the two seeds must be a number from 0 to 1, got nan"),
        (("c", 9.0, 0, 1, 0.5, "4"), "distilled for guidance 0 to 4"),
        (("c", 1.0, 0, -3, 0.5, "4"), "seed must be between 0"),
        (("c", 1.0, 0, 1, 0.5, "3"), "images must be one of 1, 4, 16, got '3'"),
        (("zebra", 1.0, 0, 1, 0.5, "1"), "unknown class 'zebra'"),
    ],
)
def test_bad_values_get_one_line(live, values, message):
    with pytest.raises(Exception, match=message):
        live.update(*values)


def test_without_a_student_the_tab_says_so(tmp_path):
    make_tiny_checkpoint(tmp_path / "checkpoints" / "cifar10-base")
    live = Live(Backend(tmp_path / "checkpoints", tmp_path / "runs", tmp_path / "shared.zip", tmp_path))
    assert live.choices()[0] == ["random"]
    with pytest.raises(Exception, match="no distilled student found in"):
        live.update("random", 1.0, 0, 1, 0.5, "1")


@pytest.mark.slow
def test_the_served_live_endpoint_draws_the_last_value_asked(live, tmp_path):
    live.backend.precision = "fp32"
    for client in served_client(live.backend, tmp_path):
        for between in (0.0, 0.3, 0.6):
            path, caption = client.predict("c", 2.0, 3, 9, between, "1", api_name="/live")  # the state stays out
        assert caption.endswith("seed 3 → 9 at 0.60")
        direct_path, _, _ = live.update("c", 2.0, 3, 9, 0.6, "1")
        assert np.array_equal(np.asarray(Image.open(path)), np.asarray(Image.open(direct_path)))
        with pytest.raises(AppError, match="seed must be between 0"):
            client.predict("c", 2.0, 3, -9, 0.5, "1", api_name="/live")
