"""Network parameterizations: eps, x0 and v outputs convert into each other exactly, and every sampler
gives the same images for a v- or x0-predicting network as for the eps network it is equivalent to."""

import pytest
import torch
from helpers import Reparameterized
from torch import nn

from fastdiff.config import DiffusionConfig, ModelConfig, from_dict
from fastdiff.diffusion.sampling import make_plan, sample
from fastdiff.diffusion.schedule import NoiseSchedule
from fastdiff.nn.unet import UNet

SCHEDULE = NoiseSchedule(DiffusionConfig(num_timesteps=50))


@pytest.mark.parametrize("prediction", ["eps", "v", "x0"])
def test_conversions_round_trip(prediction):
    generator = torch.Generator().manual_seed(0)
    x0 = torch.randn(6, 3, 4, 4, generator=generator)
    eps = torch.randn(6, 3, 4, 4, generator=generator)
    t = torch.tensor([0, 1, 10, 25, 48, 49])
    x_t = SCHEDULE.q_sample(x0, t, eps)
    output = SCHEDULE.prediction_target(eps, x0, t, prediction)
    eps_back, x0_back = SCHEDULE.eps_and_x0(output, x_t, t, prediction)
    assert torch.allclose(eps_back, eps, atol=1e-4)
    assert torch.allclose(x0_back, x0, atol=1e-4)


def test_v_is_alpha_eps_minus_sigma_x0():
    x0, eps, t = torch.ones(1, 1, 1, 1), torch.full((1, 1, 1, 1), 2.0), torch.tensor([20])
    alpha_bar = SCHEDULE.alpha_bar[20]
    expected = alpha_bar.sqrt() * 2.0 - (1 - alpha_bar).sqrt()
    assert torch.allclose(SCHEDULE.prediction_target(eps, x0, t, "v"), expected.view(1, 1, 1, 1))


@pytest.mark.parametrize("prediction", ["v", "x0"])
@pytest.mark.parametrize("sampler,steps", [("ddim", 6), ("dpm++", 6), ("ddpm", 5)])
def test_sampler_gives_the_same_images_for_an_equivalent_model(prediction, sampler, steps):
    torch.manual_seed(0)
    eps_model = UNet(ModelConfig(n_feat=8, image_size=8, class_names=tuple("abcdefghij"))).eval()
    for p in eps_model.parameters():
        nn.init.normal_(p, std=0.05)
    other = Reparameterized(eps_model, prediction, SCHEDULE)
    labels, seeds = torch.tensor([1, 7]), [3, 4]
    images = [
        sample(model, SCHEDULE, labels, seeds, make_plan(model, SCHEDULE, sampler, steps, guidance=2.0))
        for model in (eps_model, other)
    ]
    assert torch.allclose(images[0], images[1], atol=1e-4)


def test_old_configs_load_as_eps_models_without_a_guidance_input():
    config = from_dict(ModelConfig, {"n_feat": 8})
    assert (config.prediction, config.guidance_embedding, config.distilled_steps) == ("eps", False, 0)
    assert UNet(config).guidance_mlp is None


@pytest.mark.parametrize(
    "options,message",
    [
        ({"prediction": "score"}, "unknown prediction"),
        ({"guidance_range": (3.0, 1.0)}, "guidance_range"),
        ({"distilled_steps": -1}, "distilled_steps"),
    ],
)
def test_bad_model_configs_are_one_line_errors(options, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(**options)
