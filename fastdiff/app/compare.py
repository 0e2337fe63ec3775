"""The Compare tab's work: two to four sampler configurations (plain or cascade) run on the same seed
and class, timed, put in a table with their NFE per resolution, effective NFE and the quality the
checkpoint's eval.json records, and plotted."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from matplotlib.figure import Figure

from ..diffusion.sampling import final_images
from ..eval.cost import effective_nfe, format_nfe, stage_nfe
from ..eval.records import configuration_label, recorded_quality
from ..nn.checkpoint import CASCADE, DISTILLED
from .generate import (
    DEFAULT_SAMPLER,
    DISTILLED_SAMPLER,
    Request,
    make_request,
    run_steps,
    serving_checkpoint,
    whole_number,
)
from .models import ModelStore

COLUMNS = ["sampler", "steps", "guidance", "variant", "stages"]
VARIANTS = {"base": False, "attention": True}
DEFAULT_CONFIGS = [  # the default sampler beside the deterministic ones (issue 15, assets/diagnosis.md)
    [DEFAULT_SAMPLER, 20, 2.0, "base", 1],
    ["DPM-Solver++", 20, 2.0, "base", 1],
    ["DDIM", 50, 2.0, "base", 1],
]
CASCADE_CONFIG = ["DPM-Solver++", 20, 2.0, "base", 3]  # shown too when the cascade checkpoint is there
DISTILLED_CONFIG = [DISTILLED_SAMPLER, 4, 2.0, "base", 1]  # likewise the distilled student


def default_configs(checkpoint_names: list[str]) -> list[list]:
    """The page's first configurations: at most four rows, the cascade's and the student's when shipped."""
    extra = [
        config
        for name, config in ((CASCADE, CASCADE_CONFIG), (DISTILLED, DISTILLED_CONFIG))
        if name in checkpoint_names
    ]
    return DEFAULT_CONFIGS[: 4 - len(extra)] + extra


RESULT_COLUMNS = [
    "#",
    "checkpoint",
    "sampler",
    "steps",
    "guidance",
    "stages",
    "wall time (s)",
    "NFE",
    "effective NFE",
    "images/s",
    "quality",
]
NOT_MEASURED = "not measured yet"


@dataclass
class Result:
    checkpoint: str
    request: Request
    images: torch.Tensor  # (B, C, H, W) in [-1, 1]
    seconds: float
    nfe: dict[int, int]  # model evaluations per resolution
    effective_nfe: int  # LowDiff appendix B: low-resolution NFEs scaled by their step latency
    quality: str  # eval.json's numbers, labelled with their configuration unless it is this one
    kid: float | None  # eval.json's KID when it was measured at this very configuration

    @property
    def configuration(self) -> str:
        return configuration_label(*self.request.plan.configuration)

    def row(self, number: int) -> list:
        plan = self.request.plan
        return [
            number,
            self.checkpoint,
            plan.sampler,
            plan.num_steps,
            plan.guidance,
            len(plan.stages),
            round(self.seconds, 2),
            format_nfe(self.nfe),
            self.effective_nfe,
            round(len(self.request.seeds) / self.seconds, 2),
            self.quality,
        ]


def quality(measured: dict | None, request: Request) -> tuple[str, float | None]:
    """evaluate.py's record (one configuration per checkpoint) as text, and its KID when it was measured
    at the request's configuration."""
    recorded = recorded_quality(measured, request.plan.configuration)
    if recorded is None:
        return NOT_MEASURED, None
    numbers, elsewhere = recorded
    text = f"class acc. {100 * numbers['class_accuracy']:.1f}%, KID {numbers['kid']:.4f}"
    if numbers["real_kid"] is not None:
        text += f" (real vs real {numbers['real_kid']:.4f})"
    if elsewhere:
        return f"measured at {elsewhere}: {text}", None
    return text, numbers["kid"]


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


def run_all(
    store: ModelStore, precision: str, checkpoint: str, class_name: str, seed, num_images, table
) -> list[Result]:
    """Check every configuration (and measure a cascade's step latency) first, then run them one after
    another on the same seeds."""
    planned = []
    for index, (sampler, steps, guidance, variant, stages) in enumerate(configurations(table), 1):
        try:
            num_stages = whole_number(number(stages, "stages"), "stages")
            name = serving_checkpoint(store, checkpoint, sampler, VARIANTS[variant], num_stages, number(steps, "steps"))
            loaded = store.load(name)
            request = make_request(
                loaded,
                class_name,
                sampler,
                number(steps, "steps"),
                number(guidance, "guidance"),
                0.0,
                seed,
                num_images,
                num_stages,
            )
        except ValueError as e:
            raise ValueError(f"configuration {index}: {e}") from e
        nfe = stage_nfe(request.plan.stages)
        effective = effective_nfe(nfe, loaded.step_latency()) if len(nfe) > 1 else sum(nfe.values())
        planned.append((name, loaded, request, nfe, effective))
    results = []
    for name, loaded, request, nfe, effective in planned:
        start = time.perf_counter()
        images = final_images(run_steps(loaded, request, precision))
        seconds = time.perf_counter() - start
        results.append(
            Result(name, request, images, seconds, nfe, effective, *quality(store.evaluation(name), request))
        )
    return results


def speed_figure(results: list[Result]) -> Figure:
    """KID against wall time when eval.json has it for every configuration, else speed alone."""
    figure = Figure(figsize=(6, 3.2), layout="constrained")
    axis = figure.add_subplot()
    labels = [f"{i}: {r.configuration}" for i, r in enumerate(results, 1)]
    if all(r.kid is not None and math.isfinite(r.kid) for r in results):
        axis.scatter([r.seconds for r in results], [r.kid for r in results])
        for label, r in zip(labels, results):
            axis.annotate(label, (r.seconds, r.kid), fontsize=8)
        axis.set(xlabel="wall time (s)", ylabel="KID (lower is better)", title="KID against time")
    else:
        axis.barh(labels[::-1], [len(r.request.seeds) / r.seconds for r in results][::-1], color="tab:blue")
        axis.set(xlabel="images/s (higher is faster)")
        figure.suptitle("speed (KID not measured at every configuration)")  # centred on the figure: fits
    return figure
