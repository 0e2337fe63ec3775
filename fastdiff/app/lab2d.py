"""The 2D lab's work: train a small denoiser on a chosen set of points while streaming its loss, then
animate points moving from noise to data under DDPM, DDIM and DPM-Solver++ side by side, and draw
the predicted-noise field at a chosen t. Each session keeps its own model (a `Lab` in gr.State)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from matplotlib.figure import Figure

from ..diffusion.guidance import check_guidance
from ..diffusion.samplers import SAMPLER_NAMES
from ..diffusion.schedule import NoiseSchedule
from ..lab.flows import noise_field, paths
from ..lab.toy2d import TOY_DIFFUSION, ToyDenoiser, make_points, one_thread, train

NUM_POINTS = 4000  # training points
SHOWN_POINTS = 500  # points animated
ANIMATION_FRAMES = 20
FRAME_SECONDS = 0.15  # pause between animation frames, so the page shows each
MAX_TRAIN_SECONDS = 120
MAX_TRAIN_STEPS = 20000
CLASSES = {"both classes": None, "class 0 (blue)": 0, "class 1 (orange)": 1}
NO_MODEL = "Press Train first: each visitor trains their own small model."
LIMITS = (-1.7, 1.7)


@dataclass
class Lab:
    dataset: str
    points: torch.Tensor  # (NUM_POINTS, 2)
    labels: torch.Tensor  # (NUM_POINTS,) 0 or 1
    model: ToyDenoiser = field(default_factory=ToyDenoiser)
    schedule: NoiseSchedule = field(default_factory=lambda: NoiseSchedule(TOY_DIFFUSION))
    losses: list[tuple[int, float]] = field(default_factory=list)  # (step, mean loss)


def data_axis(figure: Figure, position, lab: Lab, title: str):
    axis = figure.add_subplot(*position)
    axis.scatter(*lab.points[:1500].T, s=2, c=lab.labels[:1500], cmap="tab10", vmin=0, vmax=9, alpha=0.25)
    axis.set(xlim=LIMITS, ylim=LIMITS, aspect="equal", title=title, xticks=[], yticks=[])
    return axis


def training_figure(lab: Lab) -> Figure:
    figure = Figure(figsize=(8, 3), layout="constrained")
    data_axis(figure, (1, 2, 1), lab, f"{lab.dataset} (colour: class)")
    axis = figure.add_subplot(1, 2, 2)
    if lab.losses:
        axis.plot(*zip(*lab.losses))
    axis.set(xlabel="step", ylabel="loss (MSE of eps)", title="training loss", yscale="log")
    return figure


def check_seconds(seconds) -> float:
    if seconds is None or not 1 <= float(seconds) <= MAX_TRAIN_SECONDS:
        raise ValueError(f"training time must be between 1 and {MAX_TRAIN_SECONDS} seconds, got {seconds}")
    return float(seconds)


def train_lab(dataset: str, seconds, seed: int = 0) -> Iterator[tuple[Lab, str]]:
    """A new Lab trained for about `seconds`: its run, yielding (lab, status) as it goes. Checks the
    input first (ValueError)."""
    seconds = check_seconds(seconds)
    points, labels = make_points(dataset, NUM_POINTS, torch.Generator().manual_seed(seed))
    return training(Lab(dataset, points, labels), seconds, seed)


def training(lab: Lab, seconds: float, seed: int) -> Iterator[tuple[Lab, str]]:
    with one_thread():
        for state in train(lab.model, lab.schedule, lab.points, lab.labels, MAX_TRAIN_STEPS, seed=seed):
            lab.losses.append((state.step, state.loss))
            yield lab, f"step {state.step} · {state.seconds:.1f} s · loss {state.loss:.3f}"
            if state.seconds >= seconds:
                break


def check_class(choice: str, guidance) -> tuple[int | None, float]:
    if choice not in CLASSES:
        raise ValueError(f"unknown class {choice!r}: choose one of {', '.join(CLASSES)}")
    if guidance is None:
        raise ValueError("guidance weight needs a value")
    check_guidance(float(guidance))
    return CLASSES[choice], float(guidance)


def animation(lab: Lab | None, num_steps, choice: str, guidance) -> Iterator[Figure]:
    """Figures of the same noise moving to data under each sampler, ANIMATION_FRAMES + 1 of them; the
    input is checked and the paths computed before the first."""
    if lab is None:
        raise ValueError(NO_MODEL)
    label, guidance = check_class(choice, guidance)
    if num_steps is None or not 2 <= int(num_steps) <= lab.schedule.num_timesteps:
        raise ValueError(f"steps must be between 2 and {lab.schedule.num_timesteps}, got {num_steps}")
    with one_thread():
        runs = {
            name: paths(lab.model, lab.schedule, key, int(num_steps), SHOWN_POINTS, label, guidance)
            for key, name in SAMPLER_NAMES.items()
        }
    return frames(lab, runs)


def frames(lab: Lab, runs: dict[str, torch.Tensor]) -> Iterator[Figure]:
    for frame in range(ANIMATION_FRAMES + 1):
        figure = Figure(figsize=(3.4 * len(runs), 3.6), layout="constrained")
        for index, (name, path) in enumerate(runs.items(), 1):
            step = round(frame / ANIMATION_FRAMES * (len(path) - 1))
            axis = data_axis(figure, (1, len(runs), index), lab, f"{name}: step {step}/{len(path) - 1}")
            axis.scatter(*path[step].T, s=5, color="black")
        yield figure
        time.sleep(FRAME_SECONDS if frame < ANIMATION_FRAMES else 0)


def field_figure(lab: Lab | None, t, choice: str, guidance) -> Figure:
    """The predicted noise at t over the plane as arrows (drawn as -eps: the way towards the data)."""
    if lab is None:
        raise ValueError(NO_MODEL)
    label, guidance = check_class(choice, guidance)
    if t is None or not 0 <= int(t) < lab.schedule.num_timesteps:
        raise ValueError(f"t must be between 0 and {lab.schedule.num_timesteps - 1}, got {t}")
    with one_thread():
        grid, eps = noise_field(lab.model, lab.schedule, int(t), label, guidance)
    figure = Figure(figsize=(4.5, 4.5), layout="constrained")
    axis = data_axis(figure, (1, 1, 1), lab, f"-eps at t = {int(t)} (SNR {lab.schedule.snr()[int(t)].item():.2g})")
    axis.quiver(*grid.T, *(-eps).T, angles="xy", color="tab:red", width=0.004)
    return figure
