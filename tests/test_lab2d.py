"""The 2D lab: datasets, the toy denoiser trained with the project's loss, and the image samplers and
schedule run unchanged on (N, 2) points; and the lab tab through gradio_client, one model per session."""

import pytest
import torch
from gradio_client import Client
from gradio_client.exceptions import AppError

from fastdiff.app.lab2d import ANIMATION_FRAMES, NO_MODEL
from fastdiff.diffusion.schedule import NoiseSchedule
from fastdiff.lab.flows import noise_field, paths
from fastdiff.lab.toy2d import DATASETS, TOY_DIFFUSION, ToyDenoiser, make_points, one_thread, train


@pytest.mark.parametrize("name", DATASETS)
def test_datasets_are_two_classes_of_points_in_about_the_unit_square(name):
    points, labels = make_points(name, 500, torch.Generator().manual_seed(0))
    assert points.shape == (500, 2) and set(labels.tolist()) == {0, 1}
    assert points.abs().max() < 1.5
    distances = torch.cdist(points, points).fill_diagonal_(float("inf"))
    assert (labels[distances.argmin(1)] == labels).float().mean() > 0.9  # the classes lie apart


def test_the_schedule_noises_points_like_images():
    schedule = NoiseSchedule(TOY_DIFFUSION)
    x0, noise, t = torch.ones(3, 2), torch.zeros(3, 2), torch.tensor([0, 50, 199])
    x_t = schedule.q_sample(x0, t, noise)
    torch.testing.assert_close(x_t[:, 0], schedule.alpha_bar[t].sqrt())
    torch.testing.assert_close(schedule.predict_x0(x_t, t, noise), x0)


def test_training_lowers_the_loss_and_every_sampler_starts_from_the_same_noise():
    torch.manual_seed(0)
    schedule, model = NoiseSchedule(TOY_DIFFUSION), ToyDenoiser()
    points, labels = make_points("gaussians", 1000, torch.Generator().manual_seed(0))
    with one_thread():
        states = list(train(model, schedule, points, labels, 300, batch_size=128, report_every=100))
    assert [s.step for s in states] == [100, 200, 300] and states[-1].loss < states[0].loss
    runs = {s: paths(model, schedule, s, 5, 20, label=1, guidance=2.0) for s in ("ddpm", "ddim", "dpm++")}
    assert all(run.shape == (6, 20, 2) for run in runs.values())
    torch.testing.assert_close(runs["ddim"][0], runs["dpm++"][0])
    grid, eps = noise_field(model, schedule, 100, count=5)
    assert grid.shape == eps.shape == (25, 2)
    assert torch.get_num_threads() >= 1


def test_the_lab_tab_trains_and_animates_one_model_per_session(served):
    first, second = (Client(served[1].src, verbose=False) for _ in range(2))
    _, status = first.predict("two moons", 1, api_name="/lab_train")
    assert status.startswith("done: step ")
    job = first.submit(20, "class 0 (blue)", 2.0, api_name="/lab_sample")
    job.result()
    frames = [output["plot"] for output in job.outputs()]
    assert len(frames) == ANIMATION_FRAMES + 1 and frames[0] != frames[-1]
    with pytest.raises(AppError, match=NO_MODEL.split(":")[0]):
        second.predict(20, "both classes", 0.0, api_name="/lab_sample")
    with pytest.raises(AppError, match="guidance weight must be between 0 and 10, got -1"):
        first.predict(20, "class 0 (blue)", -1.0, api_name="/lab_sample")
    with pytest.raises(AppError, match="'spiral' .* is not in the list of choices"):
        first.predict("spiral", 1, api_name="/lab_train")
