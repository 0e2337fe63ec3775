"""The served app's one line for sampling: requests wait in order, and the requests that wait for the same
model, plan (sampler, steps, guidance, eta, stages) and precision run as one batch, each image from its
own seed (diffusion/rng.py), so that each request gets exactly the images it gets alone. Each request
reads its own slice of every step, so its frames still stream to its own page, and while it waits it
can ask for its place in line and an estimate of the wait.

LANES batches run at once; a batch holds at most MAX_BATCH_IMAGES images (by device type: past that a
CPU gets no faster per image, docs/app.md).
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from ..diffusion.rng import ImageRNG
from ..diffusion.sampling import RunStep, sample_steps
from .generate import Request
from .models import LoadedModel

LANES = 2  # batches sampled at once (one per CPU core); more wait
MAX_BATCH_IMAGES = {"cpu": 64, "cuda": 1024}
POLL = 0.25  # seconds between a waiting request's looks at its place in line
END = object()  # put after a job's last step


@dataclass(eq=False)
class Job:
    """One request in line: its model, checked request, optional first-stage noise, and the steps of its
    images as the batch that runs it computes them."""

    loaded: LoadedModel
    request: Request
    precision: str
    start_noise: torch.Tensor | None = None  # (B, C, H, W) x_T of the first stage in place of the seeds'
    steps: queue.Queue = field(default_factory=queue.Queue)  # RunStep of this job's images, then END or an error
    started: threading.Event = field(default_factory=threading.Event)
    cancelled: bool = False

    @property
    def num_images(self) -> int:
        return len(self.request.seeds)

    def joins(self, other: Job) -> bool:
        """Whether the two can run in one batch: the same model, plan and precision."""
        return (
            self.loaded is other.loaded
            and self.request.plan == other.request.plan
            and self.precision == other.precision
        )

    def results(self) -> Iterator[RunStep]:
        """This job's steps as the batch computes them; raises what the batch raised."""
        while (step := self.steps.get()) is not END:
            if isinstance(step, BaseException):
                raise step
            yield step


@dataclass
class Place:
    """Where a waiting job stands: 1 when its batch is the next to start."""

    place: int
    seconds: float | None  # estimated wait until its batch starts; None before the model has been timed


@dataclass(eq=False)
class Batch:
    jobs: list[Job]
    started: float  # time.perf_counter() when it started
    estimate: float | None  # its expected duration in seconds


class SamplingQueue:
    def __init__(self, device: torch.device, lanes: int = LANES):
        self.lanes = lanes
        self.max_images = MAX_BATCH_IMAGES.get(device.type, MAX_BATCH_IMAGES["cpu"])
        self.waiting: list[Job] = []
        self.running: list[Batch] = []
        self.seconds_per_image_step: dict[str, float] = {}  # by model name, from its latest batch
        self.changed = threading.Condition()
        self.lane_threads: list[threading.Thread] = []  # started by the first request

    def submit(
        self, loaded: LoadedModel, request: Request, precision: str, start_noise: torch.Tensor | None = None
    ) -> Job:
        job = Job(loaded, request, precision, start_noise)
        with self.changed:
            while len(self.lane_threads) < self.lanes:
                self.lane_threads.append(threading.Thread(target=self._work, daemon=True))
                self.lane_threads[-1].start()
            self.waiting.append(job)
            self.changed.notify()
        return job

    def cancel(self, job: Job) -> None:
        """Take a job out of line; a running batch stops once none of its jobs wants it."""
        with self.changed:
            job.cancelled = True
            if job in self.waiting:
                self.waiting.remove(job)

    def running_jobs(self) -> int:
        """Requests whose batches are sampling now."""
        with self.changed:
            return sum(len(batch.jobs) for batch in self.running)

    def wait(self, job: Job) -> Iterator[Place]:
        """Yield the job's place every POLL seconds until its batch starts."""
        while not job.started.wait(POLL):
            with self.changed:
                place = self._place(job)
            if place is not None:
                yield place

    # -- the lanes -----------------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self.changed:
                while not self.waiting:
                    self.changed.wait()
                jobs = next_batch(self.waiting, self.max_images)
                for job in jobs:
                    self.waiting.remove(job)
                    job.started.set()
                batch = Batch(jobs, time.perf_counter(), self._duration(jobs))
                self.running.append(batch)
            try:
                self._run(jobs)
            except Exception as e:  # noqa: BLE001 - every job of the batch gets the error to show
                for job in jobs:
                    job.steps.put(e)
            finally:
                with self.changed:
                    self.running.remove(batch)

    def _run(self, jobs: list[Job]) -> None:
        first = jobs[0]
        model, schedule, plan = first.loaded.model, first.loaded.schedule, first.request.plan
        labels = None if first.request.labels is None else torch.cat([job.request.labels for job in jobs])
        seeds = [seed for job in jobs for seed in job.request.seeds]
        start_noise = None
        if any(job.start_noise is not None for job in jobs):
            shape = (model.config.image_channels, plan.stages[0].resolution, plan.stages[0].resolution)
            start_noise = torch.cat(
                [
                    job.start_noise if job.start_noise is not None else ImageRNG(job.request.seeds).randn(*shape)
                    for job in jobs
                ]
            )
        slices, start = [], 0
        for job in jobs:
            slices.append(slice(start, start + job.num_images))
            start += job.num_images
        began = time.perf_counter()
        steps = sample_steps(model, schedule, labels, seeds, plan, first.precision, start_noise=start_noise)
        for step in steps:
            if all(job.cancelled for job in jobs):
                steps.close()
                return
            for job, part in zip(jobs, slices):
                if not job.cancelled:
                    job.steps.put(piece(step, part))
        self.seconds_per_image_step[first.loaded.name] = (time.perf_counter() - began) / (len(seeds) * plan.nfe)
        for job in jobs:
            job.steps.put(END)

    # -- estimates -----------------------------------------------------------------------------------

    def _duration(self, jobs: list[Job]) -> float | None:
        """Expected seconds of a batch, from its model's latest batch; None before it ran one."""
        rate = self.seconds_per_image_step.get(jobs[0].loaded.name)
        if rate is None:
            return None
        return rate * sum(job.num_images for job in jobs) * jobs[0].request.plan.nfe

    def _place(self, job: Job) -> Place | None:
        """The job's place among the batches that will start before it, formed as the lanes will form
        them, and when its own starts; None once it is no longer waiting. Called holding the lock."""
        if job not in self.waiting:
            return None
        now = time.perf_counter()
        free_at, known = [], True  # seconds from now until each lane is free
        for batch in self.running:
            known &= batch.estimate is not None
            free_at.append(max(0.0, batch.started + (batch.estimate or 0.0) - now))
        free_at += [0.0] * (self.lanes - len(free_at))
        waiting, place = list(self.waiting), 0
        while waiting:
            jobs = next_batch(waiting, self.max_images)
            place += 1
            lane = min(range(len(free_at)), key=free_at.__getitem__)
            if job in jobs:
                return Place(place, free_at[lane] if known else None)
            duration = self._duration(jobs)
            known &= duration is not None
            free_at[lane] += duration or 0.0
            waiting = [other for other in waiting if other not in jobs]
        return None


def in_line(place: Place) -> str:
    """ "3rd in line, about 4 s to wait"; without the time before the model has been timed."""
    suffix = "th" if 10 <= place.place % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(place.place % 10, "th")
    wait = "" if place.seconds is None else f", about {max(1, round(place.seconds))} s to wait"
    return f"{place.place}{suffix} in line{wait}"


def next_batch(waiting: list[Job], max_images: int) -> list[Job]:
    """The oldest waiting job and the later ones that join it, up to max_images images (the oldest
    always runs, whatever its size)."""
    first, *rest = waiting
    jobs, images = [first], first.num_images
    for job in rest:
        if job.joins(first) and images + job.num_images <= max_images:
            jobs.append(job)
            images += job.num_images
    return jobs


def piece(step: RunStep, part: slice) -> RunStep:
    """One job's images of a batch's step."""
    return dataclasses.replace(
        step, x_t=step.x_t[part], x0=step.x0[part], eps=None if step.eps is None else step.eps[part]
    )
