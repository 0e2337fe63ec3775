"""Timing tools of the benchmarks: the matmul ceiling, FLOPs of a forward pass, a fresh process per
measurement (for its own peak memory), and sampling runs timed in turns within one process."""

from __future__ import annotations

import multiprocessing
import queue as queue_module
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from ..config import DiffusionConfig, ModelConfig
from ..device import keep_freed_memory, peak_resident_mb, resolve_device, resolve_precision
from ..diffusion.samplers import Step
from ..diffusion.sampling import final_images
from ..diffusion.schedule import NoiseSchedule
from ..nn.baseline import BaselineUNet
from ..nn.checkpoint import load_model
from ..nn.unet import UNet

GRID_SIZE = 16  # images per guided grid (w = 2: 32 images per forward pass)
GUIDANCE = 2.0
Run = Callable[[str, int | None], Iterator[Step]]  # (sampler, steps) -> a sampling run's steps


def matmul_peak_gflops(device: torch.device, dtype: torch.dtype, size: int = 2048, seconds: float = 2.0) -> float:
    """Achieved FLOP/s of a large square matmul: the ceiling the networks are compared against."""
    a, b = torch.randn(size, size, device=device, dtype=dtype), torch.randn(size, size, device=device, dtype=dtype)
    a @ b
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 2 * size**3 * count / (time.perf_counter() - start) / 1e9


def forward_gflops(model: torch.nn.Module, image_size: int = 32) -> float:
    """FLOPs of one forward pass for one image, counted by PyTorch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.randn(1, 3, image_size, image_size)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.cpu()(x, torch.tensor([10]), torch.tensor([0]))
    return counter.get_total_flops() / 1e9


def build(kind: str, checkpoint: Path | None = None):
    """A network to time: a shipped checkpoint when it exists, else random weights of the same shape."""
    if checkpoint is not None and (Path(checkpoint) / "model.safetensors").exists():
        model, diffusion, _ = load_model(checkpoint)
        return model, diffusion, True
    model = BaselineUNet() if kind == "baseline" else UNet(ModelConfig(attention=kind == "attention"))
    return model.eval(), DiffusionConfig(), False


def _isolated(queue, fn, args):
    keep_freed_memory()  # as in the entry point that spawned it
    queue.put(fn(*args) | {"peak_rss_mb": peak_resident_mb()})


def isolated(fn, *args) -> dict:
    """Run fn(*args) -> dict in a fresh process; adds its peak resident memory."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_isolated, args=(queue, fn, args))
    process.start()
    while process.is_alive() or not queue.empty():
        try:
            result = queue.get(timeout=1)
            process.join()
            return result
        except queue_module.Empty:
            continue
    raise RuntimeError(f"benchmark process for {fn.__name__}{args} died with exit code {process.exitcode}")


def grid_setup(kind: str, checkpoint: Path | None):
    """(model, schedule, labels, seeds, precision, trained) for timing one guided 16-image grid."""
    device = resolve_device()
    model, diffusion, trained = build(kind, checkpoint)
    model = model.to(device, memory_format=torch.channels_last)
    labels = torch.arange(GRID_SIZE, device=device) % 10
    return model, NoiseSchedule(diffusion), labels, list(range(GRID_SIZE)), resolve_precision("auto", device), trained


WARMUP = ("ddim", 2)


def time_run(
    run: Run,
    sampler: str,
    steps: int | None,
    timed_steps: int | None = None,
    repeats: int = 1,
    warmup: tuple[str, int] = WARMUP,
) -> dict:
    """Seconds of run(sampler, steps) after a run(*warmup) (first-call allocations and kernel selection;
    a distilled student warms up on its own grid), the fastest of `repeats` runs (as timeit); with
    timed_steps, the mean step time over that many steps extrapolated to all steps."""
    return time_runs([run], sampler, steps, timed_steps, repeats, warmup)[0]


def time_runs(
    runs: list[Run],
    sampler: str,
    steps: int | None,
    timed_steps: int | None = None,
    rounds: int = 1,
    warmup: tuple[str, int] = WARMUP,
) -> list[dict]:
    """time_run for several configurations in one process: all are warmed up, then each is timed once per
    round, taking turns, so that a drift of the machine's speed over minutes falls on all alike; the
    fastest round of each, with every round's seconds (rounds_s)."""
    warmups = []
    for run in runs:
        start = time.perf_counter()
        final_images(run(*warmup))
        warmups.append(time.perf_counter() - start)
    timings = [[] for _ in runs]
    for _ in range(rounds):
        for run, timing in zip(runs, timings):
            timing.append(_timed(run, sampler, steps, timed_steps))
    return [
        min(timing, key=lambda result: result["seconds"])
        | {"warmup_s": warmup, "rounds_s": [result["seconds"] for result in timing]}
        for timing, warmup in zip(timings, warmups)
    ]


def _timed(run: Run, sampler: str, steps: int | None, timed_steps: int | None) -> dict:
    start = time.perf_counter()
    first_frame, done = None, 0
    for step in run(sampler, steps):
        step.x0.float().sum().item()  # force completion, as a UI converting the frame would
        first_frame = first_frame or time.perf_counter() - start
        done += 1
        if timed_steps and done == timed_steps:
            break
    return {
        "seconds": (time.perf_counter() - start) * step.num_steps / done,
        "first_frame_s": first_frame,
        "extrapolated_from": done if done < step.num_steps else None,
    }
