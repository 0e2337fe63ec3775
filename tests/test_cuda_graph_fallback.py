"""The CUDA-graph sampling path falls back to the plain guided forward off CUDA, and GPU benchmark files
are named by the GPU beside the CPU ones."""

import torch

from fastdiff.device import results_suffix
from fastdiff.diffusion.guidance import GuidedDenoiser, guided_denoiser
from fastdiff.diffusion.sampling import make_plan, sample_steps
from fastdiff.diffusion.schedule import NoiseSchedule
from fastdiff.nn.checkpoint import load_model


def test_off_cuda_the_denoiser_is_the_plain_guided_one(tiny_checkpoint):
    model, _, _ = load_model(tiny_checkpoint)
    assert type(guided_denoiser(model, torch.arange(2), 2.0)) is GuidedDenoiser


def test_sampling_with_or_without_the_graph_path_is_the_same_on_the_cpu(tiny_checkpoint):
    model, diffusion, _ = load_model(tiny_checkpoint)
    schedule = NoiseSchedule(diffusion)
    plan = make_plan(model, schedule, "ddpm", 4, 2.0)

    def run(cuda_graph):
        return [
            step.x_t for step in sample_steps(model, schedule, torch.arange(2), [3, 4], plan, cuda_graph=cuda_graph)
        ]

    graphed, plain = run(True), run(False)
    assert len(graphed) == 4  # streaming still yields every step
    assert all(torch.equal(a, b) for a, b in zip(graphed, plain))


def test_gpu_results_are_named_by_the_gpu(monkeypatch):
    assert results_suffix(torch.device("cpu")) == ""
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 80GB HBM3")
    assert results_suffix(torch.device("cuda")) == "-nvidia-h100-80gb-hbm3"
