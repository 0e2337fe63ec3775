"""Device and mixed-precision choice: CUDA with TF32 when present, otherwise the CPU; autocast in the
precision measured fastest on that kind of device (AUTO_PRECISION)."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import platform
import re
import resource
import sys
from pathlib import Path

import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
# What --precision auto picks per device type: the faster of training and sampling as measured by
# `python -m fastdiff bench gpu` (CUDA: not yet set from a measurement) and `bench train|sample` (CPU:
# bf16 only where the CPU executes it natively, see cpu_has_bf16).
AUTO_PRECISION = {"cuda": "fp16", "cpu": "bf16"}
# Set to fp32 (or bf16, fp16), it is what --precision auto picks on every device: a bf16 machine then runs
# the fp32 path that a CPU without native bf16 takes (.ci/run runs the precision-sensitive tests so).
AUTO_PRECISION_VARIABLE = "FASTDIFF_AUTO_PRECISION"


@functools.cache
def cpu_bf16_units() -> str:
    """How the CPU executes bf16 matmuls: 'AMX' (Intel's matrix units), 'AVX512-BF16, no AMX', or
    '' (not natively, or unknown: no /proc/cpuinfo)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return ""
    return "AMX" if "amx_bf16" in flags else "AVX512-BF16, no AMX" if "avx512_bf16" in flags else ""


def cpu_has_bf16() -> bool:
    """True when the CPU executes bf16 natively (AVX512-BF16 or AMX); emulated bf16 is slower than fp32."""
    return bool(cpu_bf16_units())


M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc's mallopt parameters (malloc.h)
KEPT_FREE_BYTES = 2**30  # freed memory glibc keeps for reuse before it returns the rest to the system


@functools.cache
def keep_freed_memory() -> bool:
    """Let glibc's malloc keep freed memory for the next allocation instead of returning it to the
    system. PyTorch's CPU tensors come from malloc, which by default gives large ones mappings of their
    own and trims the heap's free top, so a loop of forward passes or training steps that frees all it
    allocated faults its feature maps in page by page again on every pass (docs/performance.md).
    Called once per process by the entry points; False (nothing changed) where the C library is not
    glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(M_MMAP_MAX, 0) and libc.mallopt(M_TRIM_THRESHOLD, KEPT_FREE_BYTES))
    except (OSError, AttributeError):
        return False


def resident_mb(pid: int | str = "self") -> float | None:
    """A process's resident memory now in MiB (VmRSS from /proc); None without /proc (not Linux)."""
    return proc_status_mb(pid, "VmRSS")


def proc_status_mb(pid: int | str, field: str) -> float | None:
    status = Path(f"/proc/{pid}/status")
    if not status.exists():
        return None
    return int(next(line.split()[1] for line in status.read_text().splitlines() if line.startswith(field))) / 1024


def peak_resident_mb(pid: int | str = "self") -> float | None:
    """A process's peak resident memory in MiB: VmHWM from /proc, which starts afresh when the process
    executes (getrusage's ru_maxrss of a spawned process also counts its parent's memory at the fork);
    without /proc, ru_maxrss for this process and None for another."""
    if Path("/proc").is_dir():
        return proc_status_mb(pid, "VmHWM")
    if pid != "self":
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (2**20 if sys.platform == "darwin" else 1024)


def device_name(device: torch.device) -> str:
    """The GPU's name on CUDA, else the CPU's model name: the machine a number or a run is recorded with."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if Path("/proc/cpuinfo").exists():
        with open("/proc/cpuinfo") as f:
            models = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        if models:
            return models[0]
    return platform.processor() or platform.machine()


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for, but CUDA is not available here")
    return device


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' becomes $FASTDIFF_AUTO_PRECISION when set, else AUTO_PRECISION for the device type (fp32 on
    a CPU without native bf16 and on other devices)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if precision == "auto" and os.environ.get(AUTO_PRECISION_VARIABLE):
        precision = os.environ[AUTO_PRECISION_VARIABLE]
        if precision not in PRECISIONS[1:]:
            raise ValueError(
                f"${AUTO_PRECISION_VARIABLE} must be one of {', '.join(PRECISIONS[1:])}, got {precision!r}"
            )
    if precision == "auto":
        chosen = AUTO_PRECISION.get(device.type, "fp32")
        return "fp32" if device.type == "cpu" and not cpu_has_bf16() else chosen
    if precision == "fp16" and device.type == "cpu":
        raise ValueError("fp16 autocast is for CUDA; on the CPU use bf16 or fp32")
    return precision


def describe_precision(precision: str, device: torch.device) -> str:
    """What resolve_precision makes of precision on device, and why, for the line a command prints first:
    'fp32 (auto: this CPU has no native bf16)', 'bf16 (asked for)'."""
    chosen = resolve_precision(precision, device)
    if precision != "auto":
        return f"{chosen} (asked for)"
    if os.environ.get(AUTO_PRECISION_VARIABLE):
        return f"{chosen} (auto, {AUTO_PRECISION_VARIABLE}={chosen})"
    if device.type != "cpu":
        return f"{chosen} (auto: the default on {device.type})"
    units = cpu_bf16_units()
    reason = f"this CPU runs bf16 natively: {units}" if units else "this CPU has no native bf16"
    return f"{chosen} (auto: {reason})"


def device_line(device: torch.device, precision: str) -> str:
    """The one line with which a command or the app says what it runs on: 'device cpu, precision fp32
    (auto: this CPU has no native bf16)'."""
    return f"device {device}, precision {describe_precision(precision, device)}"


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


def results_suffix(device: torch.device) -> str:
    """How files measured on this device are told apart: '' on the CPU, '-' and the GPU's name as a
    slug on CUDA (e.g. '-nvidia-h100-80gb-hbm3'), so that GPU tables sit beside the CPU ones."""
    if device.type != "cuda":
        return ""
    return "-" + re.sub(r"[^a-z0-9]+", "-", torch.cuda.get_device_name(device).lower()).strip("-")
