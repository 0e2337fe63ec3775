"""The evaluator end to end on tiny data: classifier training, saving and loading, and the metrics of
generated samples against real ones."""

import json
import math

import pytest
import torch
from helpers import CLASSES, make_tiny_checkpoint

from fastdiff.bench.cascade import matches, sweep_final_stage
from fastdiff.cli import main
from fastdiff.data import load_dataset
from fastdiff.diffusion.cascade import Stage
from fastdiff.eval.classifier import load_classifier, train_classifier
from fastdiff.eval.evaluate import evaluate, sweep
from fastdiff.nn.checkpoint import CheckpointError


def test_classifier_round_trip(classifier_dir):
    model, metadata = load_classifier(classifier_dir)
    assert model.config.class_names == tuple(CLASSES) and metadata["epochs"] == 2
    assert model(torch.randn(3, 3, 32, 32)).shape == (3, 10)
    assert model.features(torch.randn(3, 3, 32, 32)).shape == (3, 32)


def test_missing_classifier_says_how_to_train_one(tmp_path):
    with pytest.raises(CheckpointError, match="eval train-classifier"):
        load_classifier(tmp_path / "none")


def test_evaluate_reports_every_metric(tiny_checkpoint, classifier_dir, class_zip):
    result = evaluate(tiny_checkpoint, classifier_dir, str(class_zip), "ddim", 3, 2.0, n=20)
    assert 0 <= result["class_accuracy"] <= 1
    assert math.isfinite(result["kid"]) and result["fd"] >= 0
    assert set(result["real_vs_real"]) == {"class_accuracy", "kid", "fd", "texture_share"}
    assert 0 <= result["texture_share"] <= 1 and result["real_vs_real"]["texture_share"] == pytest.approx(0.01)
    # the real images' accuracy is on the held-out test split, where the classifier was measured too
    assert result["real_vs_real"]["class_accuracy"] == pytest.approx(result["classifier_test_accuracy"], abs=0.05)
    assert (
        result["nfe"] == {32: 3} and result["images_per_s"] > 0 and result["data"] == "data.zip"
    )  # the --data given, not a fixed note


def test_fid_without_its_packages_is_a_clear_error(tiny_checkpoint, classifier_dir, class_zip, capsys):
    try:
        import torch_fidelity  # noqa: F401

        pytest.skip("torch-fidelity is installed here")
    except ImportError:
        pass
    code = main(
        [
            "eval",
            "--checkpoint",
            str(tiny_checkpoint),
            "--classifier",
            str(classifier_dir),
            "--data",
            str(class_zip),
            "--n",
            "4",
            "--steps",
            "2",
            "--metric",
            "fid",
        ]
    )
    assert code == 2 and "--metric fid is not available" in capsys.readouterr().err


@pytest.mark.slow
def test_training_logs_the_quality_curve_when_asked(tmp_path, classifier_dir, class_zip):
    run = tmp_path / "run"
    code = main(
        [
            "train",
            "--data",
            str(class_zip),
            "--out",
            str(run),
            "--n-feat",
            "8",
            "--epochs",
            "2",
            "--batch-size",
            "8",
            "--precision",
            "fp32",
            "--preview-every",
            "0",
            "--quiet",
            "--eval-every",
            "1",
            "--eval-n",
            "4",
            "--classifier",
            str(classifier_dir),
        ]
    )
    records = [json.loads(line) for line in open(run / "log.jsonl")]
    assert code == 0 and [r["epoch"] for r in records] == [1, 2]
    assert all(0 <= r["class_accuracy"] <= 1 and math.isfinite(r["kid"]) and r["eval_n"] == 4 for r in records)
    assert (run / "loss.png").is_file()


def test_the_quality_curve_needs_an_evaluator(tmp_path, class_zip, capsys):
    code = main(
        [
            "train",
            "--data",
            str(class_zip),
            "--out",
            str(tmp_path / "run"),
            "--epochs",
            "1",
            "--eval-every",
            "1",
            "--classifier",
            str(tmp_path / "none"),
        ]
    )
    assert code == 2 and "eval train-classifier" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_bench_cascade_compares_stages_with_speed_and_quality(tmp_path, classifier_dir, class_zip):
    make_tiny_checkpoint(tmp_path / "checkpoints" / "cifar10-cascade", cascade=True)
    make_tiny_checkpoint(tmp_path / "checkpoints" / "cifar10-base")
    code = main(
        [
            "bench",
            "cascade",
            "--checkpoints",
            str(tmp_path / "checkpoints"),
            "--classifier",
            str(classifier_dir),
            "--data",
            str(class_zip),
            "--n",
            "4",
            "--batch",
            "2",
            "--sweep",
            "--sweep-n",
            "2",
            "--assets",
            str(tmp_path / "assets"),
        ]
    )
    table = (tmp_path / "assets" / "cascade.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| cifar10") or line.startswith("| single")]
    assert code == 0 and len(rows) == 8  # (base, cascade at 1, 2 and 3 stages) x (DDIM-50, DPM-Solver++ 20)
    assert table.count("### Sweep") == 4 and table.count("matches the reference") == 4 and "at 8x8" in table
    assert all(row.count("target") == 1 for row in rows if "stages" in row) and "--sweep --sweep-n 2" in table


def test_the_final_stage_sweep_walks_down_while_samples_match_the_reference():
    base = [Stage(16, "ddim", 50, 22), Stage(32, "ddim", 25, None, 450)]
    reference = {"class_accuracy": 0.80, "kid": 1.0}

    def judge(kids):
        def score(checkpoint, sampler, steps, stages, n):
            return {"class_accuracy": 0.79, "kid": kids[stages[-1].num_steps]}

        return score

    # 20 steps fails, so 18 and 15 are not tried even though 15 would match by chance
    table, chosen = sweep_final_stage(judge({25: 1.0, 22: 1.04, 20: 1.2, 18: 1.0, 15: 1.0}), None, base, reference, 10)
    assert chosen == [base[0], Stage(32, "ddim", 22, None, 450)]
    assert [line.split("|")[-2].strip() for line in table.splitlines()[2:]] == ["yes", "yes", "no"]
    _, chosen = sweep_final_stage(judge(dict.fromkeys((25, 22, 20, 18, 15), 1.2)), None, base, reference, 10)
    assert chosen == base  # nothing matches: the default stays


def test_matching_quality_allows_exactly_the_tolerance_of_float32_accuracies():
    reference = {"class_accuracy": torch.tensor(0.79).item(), "kid": 1.0}
    assert matches({"class_accuracy": torch.tensor(0.77).item(), "kid": 1.1}, reference, 2.0, 1.1)
    assert not matches({"class_accuracy": torch.tensor(0.76).item(), "kid": 1.0}, reference, 2.0, 1.1)
    assert not matches({"class_accuracy": 0.79, "kid": 1.11}, reference, 2.0, 1.1)


def test_bench_cascade_needs_a_cascade_checkpoint(tmp_path, capsys):
    make_tiny_checkpoint(tmp_path / "cifar10-cascade")
    code = main(["bench", "cascade", "--checkpoints", str(tmp_path)])
    assert code == 2 and "not a 3-resolution cascade" in capsys.readouterr().err


@pytest.mark.slow
def test_sweep_writes_the_quality_table_and_each_checkpoints_record(tmp_path, classifier_dir, class_zip):
    make_tiny_checkpoint(tmp_path / "cifar10-base", num_timesteps=500)
    table = sweep(tmp_path, classifier_dir, str(class_zip), 4, tmp_path)
    assert (tmp_path / "quality.md").read_text().endswith(table)
    assert "DPM-Solver++ 20 (n=4)" in table and "DPM-Solver++ 10 (n=2)" in table and "DDIM-50 (n=4)" in table
    assert "cifar10-attn: no checkpoint" in table and "cifar10-cascade: no checkpoint" in table
    record = json.loads((tmp_path / "cifar10-base" / "eval.json").read_text())
    assert (record["sampler"], record["steps"], record["guidance"], record["n"]) == ("ddim", 50, 2.0, 4)


def test_a_classifier_training_continues_from_a_saved_one(tmp_path, classifier_dir, class_zip):
    data = load_dataset(str(class_zip)), load_dataset(str(class_zip), "test")
    train_classifier(*data, tmp_path / "more", epochs=1, batch_size=8, init=classifier_dir, log=lambda line: None)
    model, metadata = load_classifier(tmp_path / "more")
    assert metadata["epochs"] == 3 and model.config.width == 4
    other = load_dataset(str(class_zip))
    other.class_names = tuple("klmnopqrst")
    with pytest.raises(ValueError, match="classifies"):
        train_classifier(other, data[1], tmp_path / "wrong", epochs=1, batch_size=8, init=classifier_dir)
