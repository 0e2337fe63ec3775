"""The cost of a sampling run beyond its wall time: model evaluations per resolution, and LowDiff
appendix B's step latency and effective NFE, which count a low-resolution evaluation by its measured
cost relative to one at full size.
"""

from __future__ import annotations

import math
import statistics
import time

import torch

from ..device import autocast, resolve_precision
from ..diffusion.cascade import Stage, resolutions_of
from ..nn.unet import UNet


def stage_nfe(stages: list[Stage]) -> dict[int, int]:
    """Model evaluations per resolution."""
    return {stage.resolution: stage.nfe for stage in stages}


def format_nfe(nfe: dict[int, int]) -> str:
    """{8: 27, 16: 19, 32: 25} -> "27 at 8x8 + 19 at 16x16 + 25 at 32x32"."""
    return " + ".join(f"{count} at {size}x{size}" for size, count in nfe.items())


@torch.inference_mode()
def measure_step_latency(
    model: UNet, batch_size: int = 64, repeats: int = 10, precision: str = "auto"
) -> dict[int, float]:
    """Average seconds of one model evaluation at each of the model's resolutions on its device (with
    the condition where the resolution takes one), after a warm-up call: appendix B's step latency.
    Timed as the samplers call the network (inference mode, autocast at the sampling precision), since
    the ratios between resolutions differ between bf16 and fp32."""
    device = next(model.parameters()).device
    precision = resolve_precision(precision, device)
    latency = {}
    for i, size in enumerate(resolutions_of(model)):
        x = torch.randn(batch_size, model.config.image_channels, size, size, device=device)
        t = torch.zeros(batch_size, dtype=torch.long, device=device)
        condition = x if i else None  # every resolution above the lowest takes a condition
        times = []
        with autocast(device, precision):
            for _ in range(repeats + 1):
                start = time.perf_counter()
                model(x, t, None, condition) if condition is not None else model(x, t)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                times.append(time.perf_counter() - start)
        latency[size] = statistics.fmean(times[1:])
    return latency


def effective_nfe(nfe: dict[int, int], latency: dict[int, float]) -> int:
    """LowDiff appendix B: each lower resolution's NFE scaled by its per-step latency relative to the
    target (largest) resolution, added to the target's NFE, rounded up (ceiling, conservatively)."""
    target = max(nfe)
    scaled = sum(count * latency[size] / latency[target] for size, count in nfe.items())
    return math.ceil(round(scaled, 9))  # the rounding keeps 22.0000000001 from becoming 23
