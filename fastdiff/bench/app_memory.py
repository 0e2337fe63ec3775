"""The served app measured from outside, through gradio_client, with the app (`python -m fastdiff.app`)
in a fresh process on the shipped checkpoints: its resident memory for `bench sample` (a guided
16-image grid generated with every shipped generator, so all of them are loaded at once, then the
server's peak resident memory), and for `bench classroom` the replay's round trip per slider move and
the Live tab's updates while a slider moves."""

from __future__ import annotations

import contextlib
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from ..device import peak_resident_mb
from ..nn.checkpoint import ATTENTION, BASE, CASCADE

REQUESTS = {  # shipped checkpoint -> (attention variant, cascade stages) of its Generate request
    BASE: (False, "1"),
    ATTENTION: (True, "1"),
    CASCADE: (False, "3"),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connect(url: str, server: subprocess.Popen, timeout: float = 120.0):
    from gradio_client import Client

    deadline = time.monotonic() + timeout
    while True:
        try:
            return Client(url, verbose=False, download_files=False)
        except Exception:  # not listening yet: gradio_client raises several kinds while the server starts
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the app did not start on {url}") from None
            time.sleep(1)


@contextlib.contextmanager
def served_app(checkpoints: Path, source: Path | None = None):
    """(server process, gradio_client Client) of the app serving `checkpoints`, stopped at the end.
    source: a FastDiff source tree to run the app from, instead of the installed one."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "fastdiff.app", "--port", str(port), "--checkpoints", str(Path(checkpoints).resolve())],
        cwd=source,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield server, connect(f"http://127.0.0.1:{port}/", server)
    finally:
        server.terminate()  # SIGTERM: a clean exit, in which the app removes its temp folder
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:  # a busy machine: never leave a server running
            server.kill()
            server.wait()


def app_peak_memory(checkpoints: Path, steps: int = 50, num_images: int = 16) -> dict:
    """{"peak_rss_mb", "generated": the checkpoints that served a grid}; peak_rss_mb is None where
    /proc is missing (not Linux)."""
    with served_app(checkpoints) as (server, client):
        generated = [name for name in REQUESTS if (Path(checkpoints) / name / "model.safetensors").exists()]
        for name in generated:
            attention, stages = REQUESTS[name]
            client.predict(
                BASE, "random", "DDIM", steps, 2.0, attention, stages, 0, num_images, 0.0, api_name="/generate"
            )
        return {"peak_rss_mb": peak_resident_mb(server.pid), "generated": generated}


def replay_round_trip(checkpoints: Path, steps: int = 50, num_images: int = 16, moves: int = 30) -> dict:
    """Milliseconds from a replay slider move sent through gradio_client to the new view received, after
    a guided DDIM grid of num_images from the base model: median and slowest of `moves`."""
    with served_app(checkpoints) as (_, client):
        client.predict(BASE, "random", "DDIM", steps, 2.0, False, "1", 0, num_images, 0.0, api_name="/generate")
        times = []
        for move in range(moves):
            start = time.perf_counter()
            client.predict(100 * move // (moves - 1), 1 + move % num_images, api_name="/scrub")
            times.append(time.perf_counter() - start)
    return {"median_ms": 1000 * statistics.median(times), "max_ms": 1000 * max(times)}


def live_round_trip(checkpoints: Path, num_images: int, changes: int = 30, interval: float = 0.1) -> dict:
    """The Live tab's guidance slider moved from w = 0 to 4 in `changes` values, one every `interval`
    seconds, as the page sends them (trigger_mode "always_last": a value is sent when the previous update
    has come back, and only the newest one; those passed over meanwhile are skipped): milliseconds from
    sending to the picture received, median and slowest, the median of the sampling time the server
    reports in the caption, how many values were drawn and skipped, and whether the last value was drawn."""
    values = [round(4 * i / (changes - 1), 2) for i in range(changes)]
    with served_app(checkpoints) as (_, client):
        client.predict("random", 2.0, 0, 1, 0.0, str(num_images), api_name="/live")  # loads the student
        start, times, sampling, drawn = time.perf_counter(), [], [], []
        while not drawn or drawn[-1] < changes - 1:
            newest = min(changes - 1, int((time.perf_counter() - start) / interval))
            if drawn and newest == drawn[-1]:
                time.sleep(start + (newest + 1) * interval - time.perf_counter())
                continue
            sent = time.perf_counter()
            _, caption = client.predict("random", values[newest], 0, 1, 0.0, str(num_images), api_name="/live")
            times.append(time.perf_counter() - sent)
            sampling.append(float(caption.split(" ms")[0]))  # the caption starts "41 ms · ..."
            drawn.append(newest)
    return {
        "median_ms": 1000 * statistics.median(times),
        "max_ms": 1000 * max(times),
        "sampling_ms": statistics.median(sampling),
        "drawn": len(drawn),
        "skipped": changes - len(drawn),
        "last_drawn": drawn[-1] == changes - 1,
    }
