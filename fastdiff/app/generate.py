"""Generation for the app: settings from the page checked once into a `Request` (a sampling plan,
labels and seeds) and a run watched for streaming (diffusion/frames.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from ..diffusion.frames import Progress, watch
from ..diffusion.guidance import MAX_GUIDANCE
from ..diffusion.samplers import SAMPLER_NAMES
from ..diffusion.sampling import MAX_IMAGES, Plan, RunStep, check_seed, class_labels, make_plan, sample_steps
from ..diffusion.trajectory import Trajectory
from .models import LoadedModel, ModelStore

# The distilled student as a sampler choice: DDIM at the student's step count, guidance in one pass,
# on the checkpoint ModelStore.resolve picks for it.
DISTILLED_SAMPLER = "Distilled (one pass per step)"
SAMPLER_LABELS = {name: key for key, name in SAMPLER_NAMES.items()} | {DISTILLED_SAMPLER: "ddim"}  # -> SAMPLERS keys
DEFAULT_SAMPLER = SAMPLER_NAMES["dpm++sde"]  # fewest noise textures at 20 steps (issue 15, assets/diagnosis.md)
PAGE_STEPS = 20  # the steps box's first value


def serving_checkpoint(
    store: ModelStore, checkpoint: str, sampler_label: str, attention: bool, stages: int, steps=None
) -> str:
    """The checkpoint that runs a request (ModelStore.resolve): the distilled sampler asks for the
    student of `steps` steps (a whole number, or None for the 4-step one)."""
    distilled = sampler_label == DISTILLED_SAMPLER
    steps = whole_number(steps, "steps") if distilled and steps is not None else None
    return store.resolve(checkpoint, attention, stages, distilled=distilled, steps=steps)


@dataclass
class Request:
    plan: Plan
    labels: torch.Tensor | None  # (num_images,) class labels, None for an unconditional model
    seeds: list[int]  # image i uses seeds[i]


def whole_number(value, name: str) -> int:
    """A control's value (a number or numeric text) as an int; ValueError naming what was typed for
    empty, non-numeric, infinite or fractional input."""
    if value is None or value == "":
        raise ValueError(f"{name} needs a whole number")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a whole number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(number) or number != int(number):
        raise ValueError(f"{name} must be a whole number, got {value}")
    return int(number)


def make_request(
    loaded: LoadedModel,
    class_name: str,
    sampler_label: str,
    steps,
    guidance,
    eta,
    seed,
    num_images,
    num_stages: int = 1,
) -> Request:
    """Check every setting against the model; raises ValueError with a one-line message. A cascade's
    stages are its default ones scaled to `steps` plain steps."""
    if sampler_label not in SAMPLER_LABELS:
        raise ValueError(f"unknown sampler {sampler_label!r}: use one of {', '.join(SAMPLER_LABELS)}")
    sampler = SAMPLER_LABELS[sampler_label]
    num_images = whole_number(num_images, "number of images")
    if not 1 <= num_images <= MAX_IMAGES:
        raise ValueError(f"number of images must be between 1 and {MAX_IMAGES}, got {num_images}")
    seed = whole_number(seed, "seed")
    check_seed(seed, num_images)
    if guidance is None:  # also what a browser sends for a number too large to hold, such as 1e400
        raise ValueError(f"guidance weight must be a number between 0 and {MAX_GUIDANCE:g}, got none")
    uses_eta = sampler_label == SAMPLER_NAMES["ddim"]
    if uses_eta and eta is None:
        raise ValueError("eta must be a number between 0 and 1, got none")
    guidance, eta = float(guidance), float(eta if uses_eta else 0.0)
    plan = make_plan(loaded.model, loaded.schedule, sampler, whole_number(steps, "steps"), guidance, eta, num_stages)
    config = loaded.model.config
    labels = class_labels(class_name or "random", config.class_names if config.num_classes else (), num_images, seed)
    return Request(plan, labels, list(range(seed, seed + num_images)))


def run_steps(loaded: LoadedModel, request: Request, precision: str):
    """The sampling run of a checked request."""
    return sample_steps(loaded.model, loaded.schedule, request.labels, request.seeds, request.plan, precision)


def stream(
    steps: Iterator[RunStep], loaded: LoadedModel, request: Request, trajectory: Trajectory | None = None, **timing
) -> Iterator[Progress]:
    """A request's steps (run_steps, or its job's in the app's line), watched: Progress records for the
    page, the run kept for replay in `trajectory`. timing: watch's interval and clock."""
    return watch(
        trajectory.record(steps) if trajectory else steps,
        loaded.model.config.image_size,
        len(request.plan.stages),
        **timing,
    )
