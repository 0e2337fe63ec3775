"""Training on tiny synthetic data: the loss falls, resume is exact, AMP runs, bad steps are handled,
and torchrun with two gloo processes works with only rank 0 writing."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import color_dataset, flat_png, make_trainer, write_zip

from fastdiff.config import ModelConfig, TrainConfig
from fastdiff.device import device_name
from fastdiff.nn.checkpoint import images_seen_total, load_model, read_config
from fastdiff.train.trainer import Trainer, learning_rate, plot_run

TINY = ModelConfig(n_feat=8)


@pytest.mark.slow
def test_loss_falls_within_a_few_dozen_steps(tmp_path):
    trainer = make_trainer(tmp_path, epochs=12, lr=2e-3)
    losses = []
    trainer.on_event = lambda e: losses.append(e.data["loss"]) if e.kind == "step" else None
    trainer.run()
    assert len(losses) == 48
    assert np.mean(losses[-10:]) < 0.6 * np.mean(losses[:5])


@pytest.mark.slow
def test_killed_and_resumed_run_equals_an_uninterrupted_one(tmp_path):
    uninterrupted = make_trainer(tmp_path, "a")
    uninterrupted.run()
    interrupted = make_trainer(tmp_path, "b")
    interrupted.on_event = lambda e: interrupted.request_stop() if e.kind == "step" and e.step == 6 else None
    interrupted.run()
    assert interrupted.step == 6  # stopped mid-epoch, with a checkpoint written
    resumed = Trainer(color_dataset(), tmp_path / "b", uninterrupted.config, TINY, resume=True)
    assert resumed.step == 6
    resumed.run()
    for key, value in uninterrupted.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], value), key
    for key, value in uninterrupted.ema.shadow.items():
        assert torch.equal(resumed.ema.shadow[key], value), key
    assert (
        resumed.optimizer.state_dict()["state"][0]["step"] == uninterrupted.optimizer.state_dict()["state"][0]["step"]
    )


@pytest.mark.slow
def test_run_folder_holds_checkpoint_log_previews_and_plot(tmp_path):
    trainer = make_trainer(tmp_path, epochs=2, preview_every=1)
    kinds = []
    trainer.on_event = lambda e: kinds.append(e.kind)
    trainer.run()
    run = tmp_path / "run"
    model, _, training = load_model(run)
    assert model.config.class_names == ("red", "green", "blue", "yellow")
    assert training["steps"] == 8 and next(iter(model.state_dict().values())).dtype == torch.float32
    records = [json.loads(line) for line in open(run / "log.jsonl")]
    assert [r["epoch"] for r in records] == [1, 2]
    assert all(r["images_per_sec"] > 0 and r["peak_memory_mb"] > 0 for r in records)
    assert (run / "previews" / "epoch-001.png").exists() and (run / "previews" / "epoch-002.gif").exists()
    assert plot_run(run).exists()
    assert kinds.count("checkpoint") == 2 and kinds.count("preview") == 2 and kinds[-1] == "done"


def test_bf16_step_runs_on_cpu(tmp_path):
    trainer = make_trainer(tmp_path, precision="bf16")
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    x0, labels = next(trainer.dataset.batches(16, torch.Generator().manual_seed(0)))
    loss = trainer.train_step(x0, labels)
    assert torch.isfinite(loss)
    assert any(not torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())  # master weights stay fp32


def test_non_finite_losses_are_skipped_then_stop_the_run(tmp_path, monkeypatch):
    trainer = make_trainer(tmp_path, max_bad_steps=3)
    warnings = []
    trainer.on_event = lambda e: warnings.append(e) if e.kind == "warning" else None
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    monkeypatch.setattr(trainer.model, "forward", lambda x, t, c=None: torch.full_like(x, float("nan")))
    with pytest.raises(FloatingPointError, match="3 non-finite losses in a row"):
        trainer.run()
    assert len(warnings) == 3 and "step skipped" in warnings[0].data["message"]
    assert all(torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())


def test_learning_rate_schedule():
    config = TrainConfig(lr=1e-4, lr_min=1e-6, warmup_steps=10)
    assert learning_rate(config, 0, 110) == pytest.approx(1e-5)
    assert learning_rate(config, 10, 110) == pytest.approx(1e-4)
    assert learning_rate(config, 60, 110) == pytest.approx((1e-4 + 1e-6) / 2)
    assert learning_rate(config, 110, 110) == pytest.approx(1e-6)


def test_warm_start_from_a_checkpoint(tmp_path, plain_run):
    first = plain_run
    second = Trainer(color_dataset(), tmp_path / "second", first.config, TINY, init=first.out_dir)
    for key, value in second.model.state_dict().items():
        assert torch.allclose(value, first.ema.shadow[key].half().float()), key
    second.run()  # the new checkpoint counts the images its starting point had seen
    training = read_config(tmp_path / "second")[2]
    assert training["warm_start"] == {"checkpoint": str(first.out_dir), "images_seen": first.step * 16}
    assert images_seen_total(training) == (first.step + second.step) * 16
    assert training["device"] == "cpu" and training["machine"] == device_name(torch.device("cpu"))
    with pytest.raises(ValueError, match="does not match"):
        Trainer(color_dataset(), tmp_path / "third", first.config, ModelConfig(n_feat=16), init=first.out_dir)


def test_a_plain_checkpoint_warm_starts_the_attention_variant_as_the_same_function(tmp_path, plain_run):
    first = plain_run
    plain, _, _ = load_model(first.out_dir)
    attention = ModelConfig(n_feat=8, attention=True)
    second = Trainer(color_dataset(), tmp_path / "second", first.config, attention, init=first.out_dir)
    x, t, labels = torch.randn(2, 3, 32, 32), torch.tensor([10, 400]), torch.tensor([0, 1])
    with torch.no_grad():
        assert torch.allclose(second.model(x, t, labels), plain.float()(x, t, labels), atol=1e-5)
    second.run()  # and the added layers train
    with pytest.raises(ValueError, match="--attention"):
        Trainer(color_dataset(), tmp_path / "third", first.config, TINY, init=tmp_path / "second")


@pytest.mark.slow
def test_torchrun_two_gloo_processes_only_rank0_writes(tmp_path):
    colors = {"red": (220, 20, 20), "blue": (20, 20, 220)}
    files = {f"pictures/{name}/{i}.png": flat_png(color) for name, color in colors.items() for i in range(8)}
    data = write_zip(tmp_path / "data.zip", files)
    env = os.environ | {"OMP_NUM_THREADS": "1", "TMPDIR": str(tmp_path)}  # torchrun's own temp folders too
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "fastdiff",
            "train",
            "--data",
            str(data),
            "--out",
            str(tmp_path / "ddp"),
            "--n-feat",
            "8",
            "--epochs",
            "2",
            "--batch-size",
            "8",
            "--precision",
            "fp32",
            "--device",
            "cpu",
            "--preview-every",
            "0",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    records = [json.loads(line) for line in open(tmp_path / "ddp" / "log.jsonl")]
    assert [r["epoch"] for r in records] == [1, 2]  # one line per epoch: rank 1 wrote nothing
    _, _, training = load_model(tmp_path / "ddp")
    assert training["world_size"] == 2 and training["steps"] == 4
    assert result.stdout.count("checkpoint:") == 1
