"""Where a forward pass spends its time, `python -m fastdiff bench profile`: the shipped base network's
guided forward pass (batch 32: each image under its class and the null class, 64 outputs) in the
sampling precision, profiled with torch.profiler; self time per kind of op, the achieved FLOP/s as a
share of a large matmul's in the same precision, and the time of its convolutions alone (what no change
around them can win back), on this machine."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from ..device import AUTOCAST_DTYPES, autocast, resolve_device, resolve_precision
from ..diffusion.guidance import guided_output
from ..report import markdown_table
from .timing import GUIDANCE, build, matmul_peak_gflops

KINDS = {  # op name fragment -> the kind the table reports it as
    "convolution": "convolution",
    "group_norm": "GroupNorm",
    "silu": "SiLU",
    "add": "add",
    "copy": "copy / dtype conversion",
    "to_copy": "copy / dtype conversion",
    "cat": "cat, linear, upsample",
    "linear": "cat, linear, upsample",
    "addmm": "cat, linear, upsample",
    "upsample": "cat, linear, upsample",
}


def kind_of(op: str) -> str:
    name = op.removeprefix("aten::")
    return next((kind for fragment, kind in KINDS.items() if fragment in name), "other")


def guided_inputs(model: torch.nn.Module, batch: int):
    device = next(model.parameters()).device
    x = torch.randn(batch, 3, 32, 32, device=device).contiguous(memory_format=torch.channels_last)
    return x, torch.full((batch,), 250, device=device), torch.arange(batch, device=device) % 10


def op_shares(model: torch.nn.Module, batch: int, precision: str, repeats: int = 10) -> dict[str, float]:
    """Share of self CPU time per kind of op over `repeats` guided forward passes."""
    x, t, labels = guided_inputs(model, batch)
    with torch.inference_mode(), autocast(x.device, precision):
        guided_output(model, x, t, labels, GUIDANCE)  # warm-up: kernel choice, allocations
        with profile(activities=[ProfilerActivity.CPU]) as profiler:
            for _ in range(repeats):
                guided_output(model, x, t, labels, GUIDANCE)
    totals: dict[str, float] = {}
    for event in profiler.key_averages():
        if event.self_cpu_time_total > 0 and event.key.startswith("aten::"):
            totals[kind_of(event.key)] = totals.get(kind_of(event.key), 0.0) + event.self_cpu_time_total
    whole = sum(totals.values())
    return {kind: value / whole for kind, value in sorted(totals.items(), key=lambda item: -item[1])}


def fastest(run, device: torch.device, repeats: int) -> float:
    """The fastest of `repeats` calls of run(), in seconds, after one untimed call (on CUDA each call
    starts after the work queued before it has finished, and is timed until its own has)."""
    run()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        run()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def seconds_per_forward(model: torch.nn.Module, batch: int, precision: str, repeats: int = 20) -> float:
    """The fastest of `repeats` guided forward passes, in seconds."""
    x, t, labels = guided_inputs(model, batch)
    with torch.inference_mode(), autocast(x.device, precision):
        return fastest(lambda: guided_output(model, x, t, labels, GUIDANCE), x.device, repeats)


def convolution_seconds(model: torch.nn.Module, batch: int, precision: str, repeats: int = 20) -> float:
    """The guided pass's convolutions alone: each convolution layer run on the input it got in one pass
    (same dtype and layout), the fastest of `repeats` runs each, summed; in seconds."""
    x, t, labels = guided_inputs(model, batch)
    convolutions = [module for module in model.modules() if isinstance(module, torch.nn.Conv2d)]
    calls = []
    hooks = [conv.register_forward_pre_hook(lambda conv, args: calls.append((conv, args[0]))) for conv in convolutions]
    with torch.inference_mode(), autocast(x.device, precision):
        try:
            guided_output(model, x, t, labels, GUIDANCE)
        finally:
            for hook in hooks:
                hook.remove()
        return sum(fastest(partial(conv, conv_input), x.device, repeats) for conv, conv_input in calls)


def guided_gflops(model: torch.nn.Module, batch: int) -> float:
    """FLOPs of one guided forward pass, counted by PyTorch's FlopCounterMode (the layers before the
    labels run once per image)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        guided_output(model, *guided_inputs(model, batch), GUIDANCE)
    return counter.get_total_flops() / 1e9


def bench_profile(assets: Path, batch: int = 32) -> str:
    device = resolve_device()
    precision = resolve_precision("auto", device)
    model, _, trained = build("base", Path("checkpoints/cifar10-base"))
    model = model.to(device, memory_format=torch.channels_last)
    gflops = guided_gflops(model, batch)
    seconds = seconds_per_forward(model, batch, precision)
    peak = matmul_peak_gflops(device, AUTOCAST_DTYPES.get(precision, torch.float32))
    convolutions = convolution_seconds(model, batch, precision)
    shares = op_shares(model, batch, precision)
    rows = [[kind, f"{100 * share:.0f}%"] for kind, share in shares.items()]
    weights = "the shipped cifar10-base" if trained else "random weights of cifar10-base's shape"
    return (
        f"Guided forward pass of {weights} at batch {batch} ({2 * batch} outputs), {precision}, channels-last: "
        f"{1000 * seconds:.1f} ms (fastest of 20), {gflops / seconds:.0f} GFLOP/s, "
        f"{100 * gflops / seconds / peak:.0f}% of a 2048x2048 {precision} matmul's {peak:.0f} GFLOP/s. "
        f"Its convolutions alone (each layer run on the input it got in that pass, fastest of 20): "
        f"{1000 * convolutions:.1f} ms, {100 * convolutions / seconds:.0f}% of the pass; the rest "
        f"{1000 * (seconds - convolutions):.1f} ms, so a change that leaves the convolutions as they are can "
        f"make the pass at most {seconds / convolutions:.2f}x faster.\n\n"
        + markdown_table(["op", "share of self CPU time (10 passes, torch.profiler)"], rows)
    )
