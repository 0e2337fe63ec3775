"""Device and mixed-precision choice: CUDA with fp16 autocast and TF32 when present, otherwise the CPU
with bf16 autocast where the CPU has native bf16 instructions, otherwise fp32."""

from __future__ import annotations

import contextlib
import functools
import resource
import sys
from pathlib import Path

import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@functools.cache
def cpu_has_bf16() -> bool:
    """True when the CPU executes bf16 natively (AVX512-BF16 or AMX); emulated bf16 is slower than fp32."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def peak_resident_mb(pid: int | str = "self") -> float | None:
    """A process's peak resident memory in MiB: VmHWM from /proc, which starts afresh when the process
    executes (getrusage's ru_maxrss of a spawned process also counts its parent's memory at the fork);
    without /proc, ru_maxrss for this process and None for another."""
    status = Path(f"/proc/{pid}/status")
    if status.exists():
        return int(next(line.split()[1] for line in status.read_text().splitlines() if line.startswith("VmHWM"))) / 1024
    if pid != "self":
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (2**20 if sys.platform == "darwin" else 1024)


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for, but CUDA is not available here")
    return device


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' becomes fp16 on CUDA, bf16 on a CPU with native bf16, fp32 otherwise."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        if device.type == "cuda":
            return "fp16"
        return "bf16" if device.type == "cpu" and cpu_has_bf16() else "fp32"
    if precision == "fp16" and device.type == "cpu":
        raise ValueError("fp16 autocast is for CUDA; on the CPU use bf16 or fp32")
    return precision


def autocast(device: torch.device, precision: str):
    """The autocast context for a resolved precision (a no-op for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=AUTOCAST_DTYPES[precision])


def setup_backends(device: torch.device) -> None:
    """TF32 matmuls and cuDNN autotuning on CUDA; a no-op elsewhere."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
