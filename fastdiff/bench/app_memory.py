"""The app's resident memory, for `bench sample`: the app (`python -m fastdiff.app`) served in a fresh process on the
shipped checkpoints, a guided 16-image grid generated with every shipped generator through
gradio_client (so all of them are loaded at once), then the server's peak resident memory."""

from __future__ import annotations

import signal
import socket
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


def app_peak_memory(checkpoints: Path, steps: int = 50, num_images: int = 16) -> dict:
    """{"peak_rss_mb", "generated": the checkpoints that served a grid}; peak_rss_mb is None where
    /proc is missing (not Linux)."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "fastdiff.app", "--port", str(port), "--checkpoints", str(checkpoints)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = connect(f"http://127.0.0.1:{port}/", server)
        generated = [name for name in REQUESTS if (Path(checkpoints) / name / "model.safetensors").exists()]
        for name in generated:
            attention, stages = REQUESTS[name]
            client.predict(
                BASE, "random", "DDIM", steps, 2.0, attention, stages, 0, num_images, 0.0, api_name="/generate"
            )
        return {"peak_rss_mb": peak_resident_mb(server.pid), "generated": generated}
    finally:
        server.send_signal(signal.SIGINT)  # a clean exit, in which the app removes its temp folder
        server.wait(timeout=30)
