"""The classroom views: replaying a finished run, the forward process as a strip and sweeping one
setting; through gradio_client on tiny checkpoints, and the pieces on their own."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from gradio_client import Client
from gradio_client.exceptions import AppError
from helpers import generate, make_tiny_checkpoint
from PIL import Image

from fastdiff.app.backend import Backend
from fastdiff.app.classroom import Classroom
from fastdiff.app.forward_strip import RECOGNISABLE_SNR, forward_strip, recognisable_t, snr_spaced_timesteps
from fastdiff.app.quality_cost import from_sweep_table
from fastdiff.config import DiffusionConfig
from fastdiff.diffusion.sampling import make_plan, sample_steps
from fastdiff.diffusion.schedule import NoiseSchedule
from fastdiff.diffusion.trajectory import Trajectory
from fastdiff.eval.records import configuration_label
from fastdiff.nn.checkpoint import load_model


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def new_client(served) -> Client:
    """A client with its own session."""
    return Client(served[1].src, verbose=False)


def test_scrubbing_replays_every_step_of_the_users_own_run(served):
    first, second = new_client(served), new_client(served)
    generate(first)
    generate(second, num_images=2, seed=5)
    start, start_caption = first.predict(0, 1, api_name="/scrub")
    end, end_caption = first.predict(100, 1, api_name="/scrub")
    other_image, _ = first.predict(100, 2, api_name="/scrub")
    assert start_caption.startswith("step 1/10 · model evaluated at t = 49, sigma_t = ")
    assert end_caption.startswith("step 10/10 ")
    assert pixels(start).shape == (6 * 32, 3 * 6 * 32 + 2 * 4, 3)
    assert not np.array_equal(pixels(start), pixels(end))
    assert not np.array_equal(pixels(end), pixels(other_image))
    # Each session replays its own run: the second one has 2 images, the first still 4.
    first.predict(100, 4, api_name="/scrub")
    with pytest.raises(AppError, match="image must be between 1 and 2 for this run, got 3"):
        second.predict(100, 3, api_name="/scrub")
    strip = pixels(first.predict(1, api_name="/scrub_strip"))
    assert strip.shape == (3 * 2 * 32 + 2 * 4, 10 * 2 * 32 + 9 * 4, 3)


def test_scrubbing_a_cascade_shows_each_stage_at_its_resolution(served):
    client = new_client(served)
    generate(client, checkpoint="cifar10-cascade", stages="3", steps=12)
    _, caption = client.predict(0, 1, api_name="/scrub")
    assert "stage 1/3 at 8x8" in caption


def test_scrubbing_before_any_run_says_what_to_do(served):
    with pytest.raises(AppError, match="Press Generate first"):
        new_client(served).predict(0, 1, api_name="/scrub")


def test_sweep_changes_only_the_swept_setting(served):
    client = new_client(served)
    settings = ("cifar10-base", "c", "DDIM", 4, 2.0, 0)
    gallery, status = client.predict(*settings, "guidance w", "0, 4, 0", api_name="/sweep")
    pictures = [pixels(item["image"]) for item in gallery]
    assert [item["caption"].split(" · ")[0] for item in gallery] == ["w = 0", "w = 4", "w = 0"]
    assert all(item["caption"].endswith(" s") for item in gallery)
    assert not np.array_equal(pictures[0], pictures[1])
    assert np.array_equal(pictures[0], pictures[2])  # the same noise for every value
    assert status.startswith("3/3")
    gallery, _ = client.predict(*settings, "class", "all", api_name="/sweep")
    assert len(gallery) == 10


def test_sweep_hands_each_picture_over_once_as_a_file(served):
    """Each update sends the whole gallery: the earlier pictures as the same files, not arrays that Gradio
    would write again over the copies it may still be sending."""
    backend, _ = served
    updates = []
    for gallery, _ in Classroom(backend).sweep("cifar10-base", "c", "DDIM", 3, 2.0, 0, "steps", "2, 3"):
        assert all(Path(path).is_file() for path, _ in gallery)
        updates.append([path for path, _ in gallery])
    assert len(updates) == 2 and updates[1][:1] == updates[0]


@pytest.mark.parametrize(
    "setting, values, message",
    [
        ("guidance w", "0, lots", "guidance w values must be numbers, got 'lots'"),
        ("steps", "2.5", "steps must be a whole number, got 2.5"),
        ("class", "zebra", "unknown class 'zebra'"),
        ("sampler", "Euler", "unknown sampler 'Euler'"),
        ("guidance w", "", "give 1 to 10 comma-separated values of guidance w, got 0"),
    ],
)
def test_sweep_rejects_bad_values_with_one_line(served, setting, values, message):
    client = new_client(served)
    with pytest.raises(AppError, match=message):
        client.predict("cifar10-base", "c", "DDIM", 4, 2.0, 0, setting, values, api_name="/sweep")


def test_trajectory_keeps_a_bounded_number_of_steps_and_the_noise_the_model_saw(tiny_checkpoint):
    model, diffusion_config, _ = load_model(tiny_checkpoint, "cpu")
    schedule = NoiseSchedule(diffusion_config)
    labels = torch.tensor([1, 2])
    for sampler in ("ddpm", "ddim", "dpm++"):
        plan = make_plan(model, schedule, sampler, 20, 1.0)
        trajectory = Trajectory(schedule, max_kept=6)
        steps = list(trajectory.record(sample_steps(model, schedule, labels, [0, 1], plan)))
        assert [s.index for s in trajectory.steps] == [0, 4, 8, 12, 16, 19]
        assert trajectory.steps[0].x_t.shape == (2, 32, 32, 3) and trajectory.steps[0].x_t.dtype == np.uint8
        for before, step in zip(steps, steps[1:]):  # eps and x0 describe the sample the model was given
            t = torch.tensor([step.t] * 2)
            torch.testing.assert_close(schedule.predict_x0(before.x_t, t, step.eps), step.x0, atol=1e-4, rtol=1e-4)


def test_forward_strip_spaces_timesteps_by_log_snr():
    schedule = NoiseSchedule(DiffusionConfig())
    timesteps = snr_spaced_timesteps(schedule)
    assert timesteps[0] == 0 and timesteps[-1] == schedule.num_timesteps - 1 and len(timesteps) == 8
    gaps = np.diff(schedule.snr()[timesteps].log().numpy())
    assert np.all(gaps < 0) and gaps.max() / gaps.min() < 1.5  # about even steps in log-SNR
    t = recognisable_t(schedule)
    assert schedule.snr()[t] >= RECOGNISABLE_SNR > schedule.snr()[t + 1]
    picture, caption = forward_strip(np.full((40, 50, 3), 200, np.uint8), schedule)
    assert picture.shape == (4 * (32 + 2 * 2), 4 * (9 * 34 + 2), 3)
    assert caption.startswith("x_0, then t = 0 (SNR ")


def test_quality_cost_reads_the_sweep_table_and_rings_the_compared_configurations(tmp_path):
    points = from_sweep_table((Path(__file__).parents[1] / "assets" / "quality.md").read_text())
    by_label = {configuration_label(*p.configuration): p for p in points}
    assert by_label["DDPM-500, w=2"].nfe == 500
    assert by_label["DDIM-50, w=0"].class_accuracy < by_label["DDIM-50, w=4"].class_accuracy
    assert by_label["DDIM-50, w=2, 3 stages"].nfe == 25 + 19 + 25  # the cascade's swept stages
    assert by_label["DDIM-4, w=2"].nfe == 4  # the distilled student
    assert by_label["DPM-Solver++ SDE-20, w=2"].nfe == 20  # a row whose label has more words
    folder = make_tiny_checkpoint(tmp_path / "checkpoints" / "cifar10-base")
    record = dict(sampler="dpm++", steps=10, guidance=2.0, stages=1, class_accuracy=0.5, kid=0.9, images_per_s=4.0)
    (folder / "eval.json").write_text(json.dumps({**record, "nfe": {"32": 10}}))
    classroom = Classroom(Backend(tmp_path / "checkpoints", tmp_path / "runs", tmp_path / "shared.zip", tmp_path))
    table = [["DPM-Solver++", 10, 2.0, "base", 1], ["DDIM", 50, 2.0, "base", 1], ["Euler", 5, 2.0, "base", 1]]
    figure, note = classroom.quality_cost("cifar10-base", table)
    accuracy_by_nfe = figure.axes[0]
    assert accuracy_by_nfe.collections[0].get_offsets().tolist() == [[10, 0.5]]  # the one recorded point
    assert accuracy_by_nfe.collections[1].get_offsets().tolist() == [[10, 0.5]]  # ringed: it is in the table
    assert "not measured: DDIM-50, w=2" in figure.get_suptitle()
    assert note == "configuration 3 not marked: unknown sampler 'Euler'"
