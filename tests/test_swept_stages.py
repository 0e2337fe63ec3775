"""The cascade's swept stage settings: recorded in config.json, the default wherever 2 or 3 stages are
chosen, the paper's fractions one option away."""

import json

import pytest
from helpers import make_tiny_checkpoint

from fastdiff.cli import main
from fastdiff.diffusion.sampling import make_plan
from fastdiff.diffusion.schedule import NoiseSchedule
from fastdiff.eval.cost import stage_nfe
from fastdiff.nn.checkpoint import load_model

SWEPT = {"ddim": {"2": [0.44, 0.3], "3": [0.6, 0.3]}}


@pytest.fixture
def swept_cascade(tmp_path):
    folder = make_tiny_checkpoint(tmp_path / "cascade", num_timesteps=500, cascade=True)
    config = json.loads((folder / "config.json").read_text())
    config["cascade"]["swept_stages"] = SWEPT
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def nfe(folder, **settings):
    model, diffusion, _ = load_model(folder)
    return stage_nfe(make_plan(model, NoiseSchedule(diffusion), "ddim", 50, **settings).stages)


def test_the_swept_settings_are_the_default_and_the_papers_one_option_away(swept_cascade):
    assert load_model(swept_cascade)[0].cascade.swept_stages == SWEPT  # read back from config.json
    assert nfe(swept_cascade, stages=2) == {16: 22, 32: 15}
    assert nfe(swept_cascade, stages=3) == {8: 30, 16: 19, 32: 15}
    assert nfe(swept_cascade, stages=3, paper_stages=True) == {8: 27, 16: 19, 32: 25}
    assert nfe(swept_cascade, stages=1) == {32: 50}


def test_a_sampler_without_swept_settings_keeps_the_papers(swept_cascade):
    model, diffusion, _ = load_model(swept_cascade)
    plan = make_plan(model, NoiseSchedule(diffusion), "dpm++", 20, stages=2)
    assert (
        stage_nfe(plan.stages)
        == stage_nfe(make_plan(model, NoiseSchedule(diffusion), "dpm++", 20, stages=2, paper_stages=True).stages)
        == {16: 11, 32: 10}
    )


def test_cli_paper_stages_flag(swept_cascade, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert (
        main(
            [
                "sample",
                "--checkpoint",
                str(swept_cascade),
                "--stages",
                "2",
                "--paper-stages",
                "--n",
                "1",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
        and out.exists()
    )
    assert main(["sample", "--checkpoint", str(swept_cascade), "--paper-stages", "--out", str(out), "--quiet"]) == 2
    assert "need --stages" in capsys.readouterr().err
