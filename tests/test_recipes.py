"""Training recipe options: v/x0 targets, Min-SNR-gamma weighting and the zero-terminal-SNR schedule. Each
is checked against what it must equal, and a model trained with them loads and samples everywhere."""

import json

import pytest
import torch
import torch.nn.functional as F
from helpers import TINY, Reparameterized, color_dataset, make_tiny_checkpoint, make_trainer

from fastdiff.cli import main
from fastdiff.config import TRAINING_PREDICTION, DiffusionConfig, ModelConfig, TrainConfig, from_dict
from fastdiff.diffusion.losses import diffusion_loss, min_snr_weight
from fastdiff.diffusion.sampling import make_plan, sample
from fastdiff.diffusion.schedule import TERMINAL_ALPHA_BAR, NoiseSchedule
from fastdiff.nn import checkpoint as ckpt
from fastdiff.nn.unet import UNet
from fastdiff.train.trainer import Trainer, loss_name, objective, warm_start_prediction

SCHEDULE = NoiseSchedule(DiffusionConfig(num_timesteps=50))
x0 = torch.randn(8, 3, 8, 8, generator=torch.Generator().manual_seed(1)).clamp(-1, 1)
LABELS = torch.arange(8) % 10


def eps_network() -> UNet:
    torch.manual_seed(0)
    model = UNet(ModelConfig(n_feat=8, image_size=8, class_names=tuple("abcdefghij"))).eval()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    return model


def loss_of(model, gamma: float) -> torch.Tensor:
    return diffusion_loss(model, SCHEDULE, x0, LABELS, torch.Generator().manual_seed(5), 0.1, gamma)


def test_the_unweighted_eps_loss_is_the_papers_mse_of_the_noise():
    model = eps_network()
    generator = torch.Generator().manual_seed(5)
    t = torch.randint(0, 50, (8,), generator=generator)
    noise = torch.randn(x0.shape, generator=generator)
    drop = torch.rand(8, generator=generator) < 0.1
    labels = torch.where(drop, torch.full_like(LABELS, 10), LABELS)
    expected = F.mse_loss(model(SCHEDULE.q_sample(x0, t, noise), t, labels), noise)
    assert torch.equal(loss_of(model, 0.0), expected)


def test_min_snr_weights_the_same_function_alike_in_every_parameterization():
    """Min-SNR-gamma is a weighting of the x0 error; written for eps or v targets it must give the
    same loss for the same denoiser."""
    eps_model = eps_network()
    losses = [loss_of(model, 5.0) for model in (eps_model, Reparameterized(eps_model, "v", SCHEDULE))]
    losses.append(loss_of(Reparameterized(eps_model, "x0", SCHEDULE), 5.0))
    assert torch.allclose(losses[0], losses[1], rtol=1e-4) and torch.allclose(losses[0], losses[2], rtol=1e-4)
    assert not torch.allclose(losses[0], loss_of(eps_model, 0.0))


def test_min_snr_clips_the_high_snr_timesteps_only():
    snr = SCHEDULE.snr()
    t = torch.tensor([0, 49])
    assert snr[0] > 5 > snr[49]
    weight = min_snr_weight(SCHEDULE, t, "eps", 5.0)
    assert torch.allclose(weight, torch.tensor([5.0 / snr[0].item(), 1.0]))


def test_zero_terminal_snr_ends_in_pure_noise_and_keeps_the_first_step():
    plain = NoiseSchedule(DiffusionConfig())
    rescaled = NoiseSchedule(DiffusionConfig(zero_terminal_snr=True))
    assert rescaled.alpha_bar[-1].item() == pytest.approx(TERMINAL_ALPHA_BAR)
    assert rescaled.alpha_bar[0].item() == pytest.approx(plain.alpha_bar[0].item())
    assert (rescaled.alpha_bar.diff() < 0).all() and (rescaled.alpha_bar <= plain.alpha_bar + 1e-6).all()
    assert torch.allclose(torch.cumprod(1 - rescaled.betas.double(), 0).float(), rescaled.alpha_bar)


def test_configs_without_the_new_options_load_as_before():
    assert from_dict(DiffusionConfig, {"num_timesteps": 50}).zero_terminal_snr is False


def test_zero_terminal_snr_refuses_an_eps_network(tmp_path):
    with pytest.raises(ValueError, match="needs a v- or x0-predicting network"):
        Trainer(
            color_dataset(),
            tmp_path / "run",
            TrainConfig(epochs=1, batch_size=16),
            ModelConfig(n_feat=8),
            DiffusionConfig(num_timesteps=50, zero_terminal_snr=True),
        )
    assert not (tmp_path / "run").exists()


def test_train_flags_record_the_recipe_and_its_model_samples_with_every_sampler(tmp_path, class_zip):
    """An eps checkpoint warm-starts a v model on a zero-terminal-SNR schedule with Min-SNR weighting;
    config.json records all three and every sampler gives finite images from it."""
    out = tmp_path / "v-run"
    flags = ["--prediction", "v", "--zero-terminal-snr", "--min-snr-gamma", "5", "--timesteps", "50"]
    argv = ["train", "--data", str(class_zip), "--out", str(out), "--epochs", "1", "--batch-size", "8"]
    argv += ["--n-feat", str(TINY["n_feat"]), "--preview-every", "0", "--precision", "fp32", "--quiet", *flags]
    eps_checkpoint = make_tiny_checkpoint(tmp_path / "eps", num_timesteps=50)
    assert main(argv + ["--init", str(eps_checkpoint)]) == 0
    config = json.loads((out / ckpt.CONFIG_NAME).read_text())
    assert config["model"]["prediction"] == "v" and config["diffusion"]["zero_terminal_snr"] is True
    assert config["training"]["config"]["min_snr_gamma"] == 5.0
    assert config["training"]["warm_start"]["checkpoint"] == str(eps_checkpoint)
    model, diffusion_config, _ = ckpt.load_model(out)
    schedule = NoiseSchedule(diffusion_config)
    for sampler, steps in (("ddim", 5), ("dpm++", 5), ("dpm++sde", 5), ("ddpm", 50)):
        images = sample(model, schedule, torch.tensor([0, 1]), [0, 1], make_plan(model, schedule, sampler, steps, 2.0))
        assert images.isfinite().all() and images.abs().max() <= 1, sampler


def test_a_new_run_trains_the_winning_recipe_and_a_warm_start_keeps_its_checkpoints_prediction(tmp_path):
    assert warm_start_prediction(None) == TRAINING_PREDICTION == "v" and TrainConfig().min_snr_gamma == 5.0
    assert warm_start_prediction(make_tiny_checkpoint(tmp_path / "eps")) == "eps"
    assert warm_start_prediction(make_tiny_checkpoint(tmp_path / "x0", prediction="x0")) == "x0"


def test_the_loss_plots_name_the_objective_a_run_trains(tmp_path):
    from fastdiff.app.train import RunState, TrainingSession
    from fastdiff.train.trainer import plot_run

    trainer = make_trainer(tmp_path, epochs=1, min_snr_gamma=5.0)
    trainer.run()
    assert loss_name("eps", 0) == "MSE of eps" and loss_name("v", 5.0) == "MSE of v, Min-SNR-5"
    expected = f"loss (MSE of {trainer.model_config.prediction}, Min-SNR-5)"
    session = TrainingSession(torch.device("cpu"))
    session.trainer, session.state = trainer, RunState(trainer.out_dir, history=[(1, 0.5, 1e-4, 0.0)])
    assert session.loss_figure().axes[0].get_ylabel() == expected  # the Train tab's live plot
    plot_run(trainer.out_dir)  # the run's loss.png reads the same from config.json
    assert objective(trainer.out_dir) == expected[len("loss (") : -1]
