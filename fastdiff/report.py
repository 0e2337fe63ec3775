"""Shared by every table the project writes (benchmarks, evaluations): the machine a number was
measured on, and markdown tables."""

from __future__ import annotations

import platform
from pathlib import Path

import torch

from .device import resolve_device, resolve_precision


def machine() -> str:
    cpu = (
        next(
            (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").exists()
        else platform.processor()
    )
    device = resolve_device()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu
    return (
        f"{name}; {torch.get_num_threads()} threads; torch {torch.__version__}; "
        f"precision {resolve_precision('auto', device)}"
    )


def markdown_table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows])
