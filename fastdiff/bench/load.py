"""A class on one server, `python -m fastdiff bench load`: the app (`python -m fastdiff.app`) in a fresh
process on the shipped checkpoints, and simulated students on 127.0.0.1, each a gradio_client session
in its own thread that reads the final grid from the server's file instead of downloading every
streamed frame (a client on the same machine would take the server's cores). A burst: all press
Generate at the same moment; reported are the latencies from the press to the final grid (median, 95th
percentile, slowest), errors, images per second over the burst, whether each grid equals the same
request made alone afterwards, and the server's resident memory before, at the peak and after. Then
new sessions one after another, one small Generate each, and the server's memory after the first ten
and after all of them.

--app DIR serves the app from another FastDiff source tree (a checkout of an earlier commit) with the
same checkpoints, for a comparison in one run."""

from __future__ import annotations

import math
import os
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from ..device import resident_mb
from ..report import markdown_table
from .app_memory import served_app

DISTILLED_LABEL = "Distilled (one pass per step)"
BURSTS = [  # (what, sampler, steps, images per student)
    ("the 4-step student", DISTILLED_LABEL, 4, 16),
    ("the app's default, DPM-Solver++ SDE 20", "DPM-Solver++ SDE", 20, 4),
]
STUDENTS = 20
SESSIONS = 500
FIRST_SESSIONS = 10
SESSION_SETTINGS = (DISTILLED_LABEL, 1, 16)  # each new session's Generate: the 1-step student, 16 images
BURST_LIMIT = 600.0  # seconds a burst may take before the bench gives up on it
MEMORY_POLL = 0.2  # seconds between readings of the server's memory
EMULATION = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "FASTDIFF_AUTO_PRECISION")


def settings(sampler: str, steps: int, num_images: int, seed: int) -> tuple:
    """/generate's inputs: the base checkpoint, class by seed, no attention, one stage, eta 0."""
    return ("cifar10-base", str(seed % 10), sampler, steps, 2.0, False, "1", seed, num_images, 0.0)


def grid_of(result) -> np.ndarray:
    """The final grid of a /generate result: the file on the server (this machine), not downloaded."""
    return np.asarray(Image.open(result[2]["path"]))


class MemoryWatch:
    """The server's resident memory read every MEMORY_POLL seconds while it runs: the highest reading."""

    def __init__(self, pid: int):
        self.pid, self.peak, self.stop = pid, resident_mb(pid), threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self):
        while not self.stop.wait(MEMORY_POLL):
            self.peak = max(self.peak, resident_mb(self.pid))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def burst(url: str, pid: int, sampler: str, steps: int, num_images: int, students: int) -> dict:
    """students sessions press Generate at once (student i with seed 1000 i and class i mod 10), then
    each request again alone."""
    from gradio_client import Client

    clients = [Client(url, verbose=False, download_files=False) for _ in range(students)]
    start_line = threading.Barrier(students)

    def press(i: int):
        start_line.wait()
        start = time.perf_counter()
        try:
            job = clients[i].submit(*settings(sampler, steps, num_images, 1000 * i), api_name="/generate")
            return job.result(timeout=BURST_LIMIT), time.perf_counter() - start
        except Exception as e:  # noqa: BLE001 - counted and shown, the other students go on
            return e, time.perf_counter() - start

    before = resident_mb(pid)
    began = time.perf_counter()
    with MemoryWatch(pid) as memory, ThreadPoolExecutor(students) as pool:
        pressed = list(pool.map(press, range(students)))
    wall = time.perf_counter() - began
    after = resident_mb(pid)
    latencies = [seconds for result, seconds in pressed if not isinstance(result, Exception)]
    errors = [result for result, _ in pressed if isinstance(result, Exception)]
    equal = 0
    for i, (result, _) in enumerate(pressed):
        if not isinstance(result, Exception):
            alone = clients[i].predict(*settings(sampler, steps, num_images, 1000 * i), api_name="/generate")
            equal += np.array_equal(grid_of(result), grid_of(alone))
    return {
        "median": statistics.median(latencies) if latencies else math.nan,
        "p95": percentile(latencies, 95),
        "max": max(latencies, default=math.nan),
        "errors": len(errors),
        "first_error": str(errors[0]) if errors else "",
        "equal": equal,
        "done": len(latencies),
        "images_per_sec": len(latencies) * num_images / wall,
        "mb": (before, memory.peak, after),
    }


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile, linear between the nearest ranks (numpy's default)."""
    return float(np.percentile(values, q)) if values else math.nan


def new_sessions(url: str, pid: int, count: int) -> dict:
    """count new sessions one after another, one Generate each: the server's memory (MB) after the first
    FIRST_SESSIONS and after all."""
    from gradio_client import Client

    memory = {}
    for i in range(count):
        client = Client(url, verbose=False, download_files=False)
        client.predict(*settings(*SESSION_SETTINGS, seed=i), api_name="/generate")
        if i + 1 in (FIRST_SESSIONS, count):
            memory[i + 1] = resident_mb(pid)
    return memory


def bench_load(
    checkpoints: Path, app_source: Path | None = None, students: int = STUDENTS, sessions: int = SESSIONS
) -> str:
    """The table of the bursts and the sessions' memory line, for assets/bench-load.md."""
    rows = []
    with served_app(checkpoints, app_source) as (server, client):
        url = client.src
        client.predict(*settings(DISTILLED_LABEL, 4, 1, 0), api_name="/generate")  # loads and times the models
        client.predict(*settings("DPM-Solver++ SDE", 20, 1, 0), api_name="/generate")
        for what, sampler, steps, num_images in BURSTS:
            result = burst(url, server.pid, sampler, steps, num_images, students)
            before, peak, after = result["mb"]
            rows.append(
                [
                    f"{students} students at once, {what}, {num_images} images each",
                    f"{result['median']:.1f} s",
                    f"{result['p95']:.1f} s",
                    f"{result['max']:.1f} s",
                    str(result["errors"]) + (f" ({result['first_error']})" if result["errors"] else ""),
                    f"{result['equal']}/{result['done']}",
                    f"{result['images_per_sec']:.1f}",
                    f"{before:.0f} / {peak:.0f} / {after:.0f}",
                ]
            )
        memory = new_sessions(url, server.pid, sessions)
    table = markdown_table(
        [
            "burst",
            "median",
            "95th percentile",
            "slowest",
            "errors",
            "grids equal to the request alone",
            "images/s",
            "server MB before / peak / after",
        ],
        rows,
    )
    emulated = [f"{name}={os.environ[name]}" for name in EMULATION if os.environ.get(name)]
    source = f"the app from {app_source}" if app_source else "this checkout's app"
    return (
        f"Served: {source}" + (f", with {' '.join(emulated)}" if emulated else "") + ".\n\n"
        f"{table}\n\n"
        f"{sessions} new sessions one after another, each one Generate of {SESSION_SETTINGS[2]} images with the "
        f"{SESSION_SETTINGS[1]}-step student: server resident memory {memory[FIRST_SESSIONS]:.0f} MB after "
        f"{FIRST_SESSIONS}, {memory[sessions]:.0f} MB after {sessions} "
        f"({memory[sessions] - memory[FIRST_SESSIONS]:+.0f} MB).\n"
    )
