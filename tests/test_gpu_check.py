"""The GPU check's measurements run end to end on the CPU with tiny settings (on the CPU the graph path
is the plain one and "vs the CPU" compares the CPU with itself)."""

import json

import torch

from fastdiff.bench.gpu import check
from fastdiff.config import ModelConfig


def test_gpu_check_writes_its_tables_with_tiny_settings(tmp_path):
    tiny = ModelConfig(n_feat=8)
    path = check(
        tmp_path,
        torch.device("cpu"),
        tiny,
        checkpoint=None,
        precisions=("fp32",),
        steps=2,
        batch_sizes=(8,),
        timed_steps=1,
        train_images=16,
        baseline=False,
        rounds=1,
    )
    assert path == tmp_path / "gpu-check.md"
    results = json.loads((tmp_path / "gpu-check.json").read_text())
    assert [(g["precision"], g["cuda_graph"]) for g in results["grids"]] == [("fp32", False), ("fp32", True)]
    assert results["graph_max_difference"] == 0
    assert results["same_seed_mean_abs_difference_vs_cpu"] == {"ddim-2": 0.0, "ddpm-2": 0.0}
    assert results["training"][0]["images_per_s"] > 0 and results["train_run"]["images_per_s"] > 0
    text = path.read_text()
    assert "CUDA graph" in text and "of its Trainer step alone" in text
