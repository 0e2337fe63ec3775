"""`eval diagnose`: the noise-texture diagnosis runs end to end on a tiny model and writes its tables and plot."""

from fastdiff.cli import main
from fastdiff.diffusion.samplers import ddim, dpm_solver_pp_sde
from fastdiff.eval.diagnose import TRACKED, Variant, diagnose


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
