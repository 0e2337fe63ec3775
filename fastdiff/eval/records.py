"""A checkpoint's eval.json: evaluate.py's flat record of one measured configuration (sampler, steps,
guidance, stages and the numbers measured there), read back by the app and the benchmark tables, which
label numbers measured at another configuration with that configuration."""

from __future__ import annotations

import json
from pathlib import Path

from ..diffusion.samplers import SAMPLER_NAMES

EVAL_NAME = "eval.json"


def read_eval(folder: Path) -> dict | None:
    """The folder's eval.json, or None when it has none or it is not a JSON object."""
    try:
        record = json.loads((Path(folder) / EVAL_NAME).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def measured_at(record: dict) -> tuple[str, int, float, int]:
    """(sampler, steps, guidance, stages) of a record; KeyError, TypeError or ValueError when it is not
    evaluate.py's format."""
    return record["sampler"], record["steps"], float(record["guidance"]), record.get("stages", 1)


def configuration_label(sampler: str, steps: int, guidance: float, stages: int) -> str:
    """("ddim", 50, 2.0, 1) -> "DDIM-50, w=2"."""
    label = f"{SAMPLER_NAMES.get(sampler, sampler)}-{steps}, w={guidance:g}"
    return label + (f", {stages} stages" if stages > 1 else "")


def recorded_quality(record: dict | None, configuration: tuple[str, int, float, int]) -> tuple[dict, str] | None:
    """The class accuracy, KID and real-vs-real KID (None if absent) a record holds, and where they were measured: "" at
    `configuration` itself, else that configuration's label. None without a record in evaluate.py's format."""
    try:
        at = measured_at(record)
        numbers = {
            "class_accuracy": float(record["class_accuracy"]),
            "kid": float(record["kid"]),
            "real_kid": (record.get("real_vs_real") or {}).get("kid"),
        }
    except (TypeError, KeyError, ValueError):
        return None
    return numbers, "" if at == configuration else configuration_label(*at)
