"""Shared by every table the project writes (benchmarks, evaluations): the machine a number was
measured on, and markdown tables."""

from __future__ import annotations

import torch

from .device import cpu_bf16_units, device_name, resolve_device, resolve_precision


def machine() -> str:
    device = resolve_device()
    name = device_name(device)
    if device.type == "cpu":
        name += f" ({cpu_bf16_units() or 'no native bf16'})"
    return (
        f"{name}; {torch.get_num_threads()} threads; torch {torch.__version__}; "
        f"precision {resolve_precision('auto', device)}"
    )


def markdown_table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows])
