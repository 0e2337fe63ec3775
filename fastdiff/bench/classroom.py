"""The classroom views' costs, `python -m fastdiff bench classroom`: how long the replay of a finished
run takes to draw per slider move (no model call), how fast the Live tab follows a moving slider, and
how long the 2D lab trains before two moons are recognisable, on this machine."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch

from ..diffusion.replay import step_view
from ..diffusion.sampling import make_plan, sample_steps
from ..diffusion.schedule import NoiseSchedule
from ..diffusion.trajectory import Trajectory
from ..lab.flows import paths
from ..lab.toy2d import TOY_DIFFUSION, ToyDenoiser, make_points, one_thread, train
from ..report import markdown_table
from .app_memory import live_round_trip, replay_round_trip
from .timing import GRID_SIZE, GUIDANCE, grid_setup

FIT_DISTANCE = 0.1  # a sampled point lies on the data when one of the data points is this close
FIT_SHARE = 0.8  # the share of sampled points on the data at which two moons count as recognisable
FIT_POINTS = 500  # points sampled to judge the fit (DDIM-20)
TRAIN_CHUNK = 250  # training steps between fit checks
TRAIN_LIMIT = 60.0  # seconds of training before giving up


def time_replay(checkpoint: Path | None, steps: int = 50, moves: int = 50) -> dict:
    """A guided DDIM run of the 16-image grid kept for replay, then `moves` slider positions drawn in
    a shuffled order: median and slowest milliseconds per view, and the kept run's size."""
    model, schedule, labels, seeds, precision, _ = grid_setup("base", checkpoint)
    trajectory = Trajectory(schedule)
    plan = make_plan(model, schedule, "ddim", steps, GUIDANCE)
    for _ in trajectory.record(sample_steps(model, schedule, labels, seeds, plan, precision)):
        pass
    order = torch.randperm(moves, generator=torch.Generator().manual_seed(0)).tolist()
    times = []
    for move in order:
        position = move * (len(trajectory.steps) - 1) // (moves - 1)
        start = time.perf_counter()
        step_view(trajectory, position, move % GRID_SIZE)  # images counted from 0 here
        times.append(time.perf_counter() - start)
    return {
        "median_ms": 1000 * statistics.median(times),
        "max_ms": 1000 * max(times),
        "mb": trajectory.nbytes() / 2**20,
    }


def on_data_share(samples: torch.Tensor, data: torch.Tensor) -> float:
    """Share of sampled points within FIT_DISTANCE of a data point."""
    return (torch.cdist(samples, data).min(dim=1).values <= FIT_DISTANCE).float().mean().item()


def time_lab_fit(dataset: str = "two moons") -> dict:
    """Training seconds (fit checks excluded) until DDIM-20 puts FIT_SHARE of FIT_POINTS sampled points
    on the data, checked every TRAIN_CHUNK steps, on one thread as the lab trains."""
    points, labels = make_points(dataset, 4000, torch.Generator().manual_seed(0))
    schedule = NoiseSchedule(TOY_DIFFUSION)
    torch.manual_seed(0)
    model = ToyDenoiser()
    checking = [0.0]  # seconds spent on fit checks, kept off the training clock
    clock = lambda: time.perf_counter() - checking[0]  # noqa: E731
    with one_thread():
        for state in train(model, schedule, points, labels, 10**6, report_every=TRAIN_CHUNK, clock=clock):
            start = time.perf_counter()
            with torch.inference_mode():
                share = on_data_share(paths(model, schedule, "ddim", 20, FIT_POINTS)[-1], points)
            checking[0] += time.perf_counter() - start
            if share >= FIT_SHARE or state.seconds >= TRAIN_LIMIT:
                break
    seconds, steps = state.seconds, state.step
    return {"seconds": seconds, "steps": steps, "share": share, "reached": share >= FIT_SHARE}


def bench_classroom(assets: Path) -> str:
    replay = time_replay(Path("checkpoints/cifar10-base"))
    served = replay_round_trip(Path("checkpoints"))
    live = {count: live_round_trip(Path("checkpoints"), count) for count in (1, 4)}
    fit = time_lab_fit()
    rows = [
        [
            f"replay: one slider move over a guided DDIM-50 run of {GRID_SIZE} images (no model call)",
            f"{replay['median_ms']:.1f} ms median, {replay['max_ms']:.1f} ms slowest of 50 moves; "
            f"the kept run {replay['mb']:.1f} MB",
        ],
        [
            "replay through the served app: slider move sent to new view received (gradio_client, 30 moves)",
            f"{served['median_ms']:.0f} ms median, {served['max_ms']:.0f} ms slowest",
        ],
        *[
            [
                f"Live tab through the served app, {count} image{'s' if count > 1 else ''}: the guidance slider "
                "moved 0 to 4 in 30 values at 10 a second, each sent once the previous picture came back",
                f"{row['median_ms']:.0f} ms median, {row['max_ms']:.0f} ms slowest update (sampling "
                f"on the server: {row['sampling_ms']:.0f} ms median); {row['drawn']} drawn, "
                f"{row['skipped']} skipped as stale; the last value " + ("drawn" if row["last_drawn"] else "NOT drawn"),
            ]
            for count, row in live.items()
        ],
        [
            f"2D lab: training until DDIM-20 puts {100 * FIT_SHARE:.0f}% of {FIT_POINTS} points within "
            f"{FIT_DISTANCE} of two moons (one thread)",
            f"{fit['seconds']:.1f} s, {fit['steps']} steps, {100 * fit['share']:.0f}% on the data"
            + ("" if fit["reached"] else f" (not reached in {TRAIN_LIMIT:.0f} s)"),
        ],
    ]
    return markdown_table(["view", "measured"], rows)
