"""The benchmark's pieces (no timings are asserted: speed is measured by `python -m fastdiff bench`)."""

import json
from pathlib import Path

import pytest
import torch
from helpers import make_tiny_checkpoint

from fastdiff.bench.app_memory import app_peak_memory
from fastdiff.bench.runner import (
    SAMPLE_CONFIGS,
    quality_columns,
    sample_jobs,
    time_app_outputs,
    time_app_streaming,
    time_cascade_sampling,
    time_sampling,
)
from fastdiff.bench.timing import forward_gflops, isolated, time_run, time_runs
from fastdiff.config import ModelConfig
from fastdiff.device import peak_resident_mb
from fastdiff.diffusion.samplers import Step
from fastdiff.nn.baseline import BaselineConfig, BaselineUNet
from fastdiff.nn.unet import UNet
from fastdiff.report import markdown_table


def test_baseline_has_the_ddpm_cifar10_size():
    model = BaselineUNet()
    assert abs(sum(p.numel() for p in model.parameters()) - 35.7e6) < 0.1e6


def test_small_baseline_forward_shape():
    model = BaselineUNet(BaselineConfig(ch=32))
    x = torch.randn(2, 3, 32, 32)
    assert model(x, torch.tensor([3, 4]), torch.tensor([1, 2])).shape == x.shape
    assert model(x, torch.tensor([3, 4])).shape == x.shape


def test_flop_count_grows_with_width_and_attention():
    small, wide = forward_gflops(UNet(ModelConfig(n_feat=16))), forward_gflops(UNet(ModelConfig(n_feat=32)))
    assert 3.5 < wide / small < 4.5  # convolutions dominate: FLOPs ~ width^2
    assert forward_gflops(UNet(ModelConfig(n_feat=16, attention=True))) > small


def test_markdown_table_and_missing_quality_columns(tmp_path):
    assert markdown_table(["a", "b"], [[1, 2]]) == "| a | b |\n|---|---|\n| 1 | 2 |"
    assert (
        quality_columns(tmp_path, ("ddim", 50, 2.0, 1))
        == quality_columns(None, ("ddim", 50, 2.0, 1))
        == ("not measured",) * 2
    )


def test_quality_is_labelled_with_the_configuration_it_was_measured_at(tmp_path):
    (tmp_path / "eval.json").write_text(
        json.dumps(
            {"sampler": "ddim", "steps": 50, "guidance": 2.0, "stages": 1, "class_accuracy": 0.612, "kid": 0.0123}
        )
    )
    assert quality_columns(tmp_path, ("ddim", 50, 2.0, 1)) == ("61.2%", "0.0123")
    assert quality_columns(tmp_path, ("dpm++", 20, 2.0, 3)) == ("61.2% (at DDIM-50, w=2)", "0.0123 (at DDIM-50, w=2)")


def test_cascade_rows_join_the_sampling_table_when_its_checkpoint_exists(tmp_path):
    plain = sample_jobs(tmp_path / "cifar10-cascade", (tmp_path / "cifar10-distilled",))
    assert len(plain) == len(SAMPLE_CONFIGS) + 2 and [job.timing for job in plain[-3:]] == [
        time_sampling,
        time_app_streaming,
        time_app_outputs,
    ]
    make_tiny_checkpoint(tmp_path / "cifar10-cascade", cascade=True)
    cascade = sample_jobs(tmp_path / "cifar10-cascade", (tmp_path / "cifar10-distilled",))[len(plain) :]
    assert [(job.label, job.sampler, job.configuration, job.timing, job.args[1:]) for job in cascade] == [
        (
            f"FastDiff cascade, {stages} stages",
            f"{sampler.upper()}, default stages",
            (sampler, steps, 2.0, stages),
            time_cascade_sampling,
            (sampler, stages),
        )
        for stages in (2, 3)
        for sampler, steps in (("ddim", 50), ("dpm++", 20))
    ]


def test_time_run_warms_up_then_runs_repeats_and_extrapolates_a_cut_run():
    calls = []

    def run(sampler, steps):
        calls.append((sampler, steps))
        return (Step(i, steps, 0, torch.zeros(1), torch.zeros(1)) for i in range(steps))

    assert time_run(run, "ddpm", 10)["extrapolated_from"] is None
    assert time_run(run, "ddpm", 10, timed_steps=3)["extrapolated_from"] == 3
    assert calls == [("ddim", 2), ("ddpm", 10)] * 2
    calls.clear()
    assert time_run(run, "ddpm", 10, repeats=3)["seconds"] > 0
    assert calls == [("ddim", 2)] + [("ddpm", 10)] * 3


def nothing() -> dict:
    return {}


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak memory of a fresh process needs /proc")
@pytest.mark.slow
def test_an_isolated_run_reports_its_own_peak_memory_not_its_parents():
    ballast = b"x" * (800 * 2**20)  # written, so resident in this process only
    child = isolated(nothing)["peak_rss_mb"]
    assert len(ballast) and child < peak_resident_mb() - 700


def test_time_runs_warms_all_up_then_lets_them_take_turns_in_rounds():
    calls = []

    def recorder(name):
        def run(sampler, steps):
            calls.append((name, steps))
            return (Step(i, steps, 0, torch.zeros(1), torch.zeros(1)) for i in range(steps))

        return run

    results = time_runs([recorder("a"), recorder("b")], "ddim", 3, rounds=2)
    assert calls == [("a", 2), ("b", 2)] + [("a", 3), ("b", 3)] * 2
    assert len(results) == 2 and all(result["seconds"] > 0 and result["warmup_s"] > 0 for result in results)


@pytest.mark.slow
def test_cascade_timing_reports_nfe_per_resolution_and_effective_nfe(tmp_path):
    result = time_cascade_sampling(make_tiny_checkpoint(tmp_path / "cascade", cascade=True), "dpm++", 3)
    assert result["nfe"] == "11 at 8x8 + 8 at 16x16 + 10 at 32x32" and result["trained"]
    assert result["effective_nfe"] > 10 and result["extrapolated_from"] is None  # 10 at 32x32, the rest cheaper


def test_baseline_runs_under_guidance():
    from fastdiff.diffusion.guidance import GuidedDenoiser

    model = BaselineUNet(BaselineConfig(ch=32)).eval()
    x = torch.randn(2, 3, 32, 32)
    assert GuidedDenoiser(model, torch.tensor([1, 2]), 2.0)(x, torch.tensor([5, 5])).shape == x.shape


@pytest.mark.slow
def test_app_streaming_timing_counts_the_frames_it_sent(tmp_path):
    make_tiny_checkpoint(tmp_path / "base", num_timesteps=50)
    result = time_app_streaming(tmp_path / "base", 4)
    assert result["trained"] and 1 <= result["frames"] <= 4 and result["nfe"] == "4"
    assert result["seconds"] > 0 and result["plain_seconds"] > 0


@pytest.mark.slow
def test_app_memory_is_read_from_the_served_app_after_each_shipped_generator(tmp_path):
    make_tiny_checkpoint(tmp_path / "cifar10-base")
    make_tiny_checkpoint(tmp_path / "cifar10-cascade", cascade=True)
    result = app_peak_memory(tmp_path, steps=2, num_images=2)
    assert result["generated"] == ["cifar10-base", "cifar10-cascade"]
    assert result["peak_rss_mb"] > 100  # torch and gradio alone take more
