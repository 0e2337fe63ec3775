"""`eval diagnose`: the noise-texture diagnosis runs end to end on a tiny model and writes its tables and plot."""

import pytest
import torch
from helpers import CLASSES, Reparameterized

from fastdiff.cli import main
from fastdiff.config import DiffusionConfig, ModelConfig
from fastdiff.diffusion.samplers import ddim, dpm_solver_pp_sde
from fastdiff.diffusion.schedule import NoiseSchedule
from fastdiff.eval.diagnose import TRACKED, Variant, diagnose, eps_calibration, first_step
from fastdiff.nn.unet import UNet


def test_diagnosis_writes_every_table_and_the_plot(tmp_path, tiny_checkpoint, classifier_dir, class_zip):  # noqa: F811
    variants = [TRACKED, Variant("SDE", dpm_solver_pp_sde, 5), Variant("DDIM eta 1", ddim, 4, {"eta": 1.0})]
    text = diagnose(tiny_checkpoint, classifier_dir, str(class_zip), n=6, assets=tmp_path, variants=variants)
    assert (tmp_path / "diagnosis.png").stat().st_size > 0
    assert (tmp_path / "diagnosis.md").read_text() == text
    for heading in ("eps calibration per t", "The first step", "Where the texture appears", "Samplers on the same"):
        assert heading in text
    assert "eval diagnose --checkpoint" in text and "data.zip" in text
    sampler_rows = [line for line in text.splitlines() if line.startswith(("| DPM", "| SDE", "| DDIM"))]
    assert len(sampler_rows) == 3


def test_diagnose_needs_two_samples(capsys):
    assert main(["eval", "diagnose", "--n", "1"]) == 2
    assert "--n must be at least 2" in capsys.readouterr().err


def test_the_calibration_reads_a_v_network_as_the_eps_network_it_equals():
    torch.manual_seed(0)
    eps_model = UNet(ModelConfig(n_feat=8, image_size=8, class_names=tuple(CLASSES))).eval()
    for p in eps_model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    schedule = NoiseSchedule(DiffusionConfig(num_timesteps=50))
    images, labels = torch.rand(4, 3, 8, 8) * 2 - 1, torch.arange(4)
    rows = [
        eps_calibration(model, schedule, images, labels, "fp32") + first_step(model, schedule, images, labels, "fp32")
        for model in (eps_model, Reparameterized(eps_model, "v", schedule))
    ]
    assert rows[0][0]["norm_ratio"] == pytest.approx(rows[1][0]["norm_ratio"], rel=1e-4)
    assert rows[0][-1][2:] == rows[1][-1][2:]
