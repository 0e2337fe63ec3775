"""Sweeping one setting on the same noise: one image per value of the guidance weight, the class, the
step count or the sampler, every other setting and the seed fixed, so that the row shows what that one
setting does. Every value is checked before anything is sampled."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..diffusion.sampling import sample
from ..images import grid
from .generate import SAMPLER_LABELS, Request, make_request
from .models import LoadedModel

SETTINGS = {  # swept setting -> make_request's keyword
    "guidance w": "guidance",
    "class": "class_name",
    "steps": "steps",
    "sampler": "sampler_label",
}
DEFAULT_VALUES = {
    "guidance w": "0, 1, 2, 3, 4",
    "class": "all",
    "steps": "5, 10, 20, 50",
    "sampler": ", ".join(SAMPLER_LABELS),
}
MAX_VALUES = 10


@dataclass
class Point:
    label: str  # "w = 2"
    request: Request


def parse_values(setting: str, text: str, class_names: tuple[str, ...]) -> list[str]:
    """The comma-separated values of a setting ("all" for every class); ValueError with a one-line
    message for an unknown setting, an empty list or too many values."""
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}: sweep one of {', '.join(SETTINGS)}")
    values = [v.strip() for v in (text or "").split(",") if v.strip()]
    if setting == "class" and values == ["all"]:
        if not class_names:
            raise ValueError("this checkpoint is unconditional: it has no classes to sweep")
        values = list(class_names)
    if not 1 <= len(values) <= MAX_VALUES:
        raise ValueError(f"give 1 to {MAX_VALUES} comma-separated values of {setting}, got {len(values)}")
    return values


def as_number(value: str, setting: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{setting} values must be numbers, got {value!r}") from None


def make_points(loaded: LoadedModel, setting: str, text: str, base: dict) -> list[Point]:
    """One checked request per value; base: make_request's keywords for everything else."""
    config = loaded.model.config
    points = []
    for value in parse_values(setting, text, config.class_names if config.num_classes else ()):
        typed = as_number(value, setting) if setting in ("guidance w", "steps") else value
        request = make_request(loaded, **{**base, SETTINGS[setting]: typed, "num_images": 1})
        label = f"w = {typed:g}" if setting == "guidance w" else f"{typed:g} steps" if setting == "steps" else value
        points.append(Point(label, request))
    return points


def run_points(loaded: LoadedModel, points: list[Point], precision: str) -> Iterator[tuple[np.ndarray, str]]:
    """(picture, "label · seconds") per point, in order, each timed alone."""
    for point in points:
        request = point.request
        start = time.perf_counter()
        images = sample(loaded.model, loaded.schedule, request.labels, request.seeds, request.plan, precision)
        seconds = time.perf_counter() - start
        yield grid(images, pad=0, scale=4), f"{point.label} · {seconds:.2f} s"
