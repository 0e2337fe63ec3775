"""The Compare tab's work: two to four sampler configurations run on the same seed and class, timed,
put in a table with any measured quality from the checkpoint's eval.json, and plotted."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from matplotlib.figure import Figure

from .app_generate import Request, make_request, sampler_steps
from .app_models import ModelStore
from .samplers import drain

COLUMNS = ["sampler", "steps", "guidance", "variant"]
VARIANTS = {"base": False, "attention": True}
DEFAULT_CONFIGS = [["DDIM", 50, 2.0, "base"], ["DPM-Solver++", 20, 2.0, "base"], ["DPM-Solver++", 10, 2.0, "base"]]
RESULT_COLUMNS = ["#", "checkpoint", "sampler", "steps", "guidance", "wall time (s)", "NFE", "images/s", "quality"]
NOT_MEASURED = "not measured yet"


@dataclass
class Result:
    checkpoint: str
    request: Request
    images: torch.Tensor    # (B, C, H, W) in [-1, 1]
    seconds: float
    quality: dict           # metric -> value from eval.json; empty when not measured

    def row(self, number: int) -> list:
        quality = ", ".join(f"{k} {v}" for k, v in self.quality.items()) or NOT_MEASURED
        return [number, self.checkpoint, self.request.sampler, self.request.num_steps, self.request.guidance,
                round(self.seconds, 2), self.request.num_steps,
                round(len(self.request.seeds) / self.seconds, 2), quality]


def configurations(table) -> list[list]:
    """The non-empty rows of the settings table; ValueError unless there are 2 to 4."""
    rows = [list(row) for row in (table or []) if any(str(cell).strip() not in ("", "nan", "None") for cell in row)]
    if not 2 <= len(rows) <= 4:
        raise ValueError(f"give two to four configurations (rows of {', '.join(COLUMNS)}), got {len(rows)}")
    for number, row in enumerate(rows, 1):
        if len(row) != len(COLUMNS):
            raise ValueError(f"configuration {number}: expected {len(COLUMNS)} values ({', '.join(COLUMNS)})")
        if row[3] not in VARIANTS:
            raise ValueError(f"configuration {number}: variant must be one of {', '.join(VARIANTS)}, got {row[3]!r}")
    return rows


def number(value, what: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, got {value!r}") from None


def run_all(store: ModelStore, precision: str, checkpoint: str, class_name: str, seed, num_images,
            table) -> list[Result]:
    """Check every configuration first, then run them one after another on the same seeds."""
    planned = []
    for index, (sampler, steps, guidance, variant) in enumerate(configurations(table), 1):
        try:
            name = store.resolve(checkpoint, VARIANTS[variant], 1)
            loaded = store.load(name)
            request = make_request(loaded, class_name, sampler, number(steps, "steps"),
                                   number(guidance, "guidance"), 0.0, seed, num_images)
        except ValueError as e:
            raise ValueError(f"configuration {index}: {e}") from e
        planned.append((name, loaded, request))
    results = []
    for name, loaded, request in planned:
        start = time.perf_counter()
        images = drain(sampler_steps(loaded, request, precision))
        results.append(Result(name, request, images, time.perf_counter() - start,
                              store.quality(name, request.sampler, request.num_steps, request.guidance)))
    return results


def speed_figure(results: list[Result]) -> Figure:
    """Quality against wall time when eval.json has numbers for every configuration, else speed alone."""
    figure = Figure(figsize=(6, 3.2), layout="constrained")
    axis = figure.add_subplot()
    labels = [f"{i}: {r.request.sampler} {r.request.num_steps} steps, w={r.request.guidance:g}"
              for i, r in enumerate(results, 1)]
    metric = next(iter(results[0].quality), None)
    values = [r.quality.get(metric) for r in results]
    if metric and all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
        axis.scatter([r.seconds for r in results], values)
        for label, r, v in zip(labels, results, values):
            axis.annotate(label, (r.seconds, v), fontsize=8)
        axis.set(xlabel="wall time (s)", ylabel=metric, title=f"{metric} against time")
    else:
        axis.barh(labels[::-1], [len(r.request.seeds) / r.seconds for r in results][::-1], color="tab:blue")
        axis.set(xlabel="images/s (higher is faster)", title=f"speed (quality: {NOT_MEASURED})")
    return figure
