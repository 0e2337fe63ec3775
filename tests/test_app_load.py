"""The served app under a class's load, on tiny checkpoints: students pressing Generate at once each get
the grid they get alone, and what the app keeps per session stays bounded however many new sessions
come; the load bench's table on a small run."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from gradio_client import Client
from helpers import GOOD, make_tiny_checkpoint
from PIL import Image

from fastdiff.app import backend as backend_module
from fastdiff.app import ui as app
from fastdiff.app.backend import Backend
from fastdiff.bench.app_memory import free_port
from fastdiff.bench.load import percentile

pytestmark = pytest.mark.slow  # a served app and many clients

KEPT = 6  # sessions kept in this test's app


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("app")
    make_tiny_checkpoint(root / "checkpoints" / "cifar10-base")
    backend = Backend(root / "checkpoints", root / "runs", root / "data.zip", root)
    demo = app.build_app(backend)
    port = free_port()
    app.launch(demo, port=port, prevent_thread_lock=True, quiet=True, sessions_kept=KEPT)
    yield backend, demo, f"http://127.0.0.1:{port}/"
    demo.close()


def grid(result) -> np.ndarray:
    return np.asarray(Image.open(result[2]["path"]))


def test_students_at_once_each_get_their_solo_grid_from_batches(served):
    backend, _, url = served
    students = [Client(url, verbose=False, download_files=False) for _ in range(8)]
    batches, run = [], backend.sampling._run
    backend.sampling._run = lambda jobs: (batches.append(len(jobs)), run(jobs))[1]
    model = backend.store.load("cifar10-base").model
    forward = model.forward
    model.forward = lambda *args, **kwargs: (time.sleep(0.02), forward(*args, **kwargs))[1]  # lanes stay busy
    start = threading.Barrier(len(students))

    def press(i):
        start.wait()
        return students[i].predict(
            *{**GOOD, "seed": 100 * i, "class_name": "abcd"[i % 4]}.values(), api_name="/generate"
        )

    try:
        with ThreadPoolExecutor(len(students)) as pool:
            together = list(pool.map(press, range(len(students))))
    finally:
        del backend.sampling._run, model.forward
    assert sum(batches) == len(students) and max(batches) > 1  # some ran together
    for i, result in enumerate(together):
        alone = students[i].predict(
            *{**GOOD, "seed": 100 * i, "class_name": "abcd"[i % 4]}.values(), api_name="/generate"
        )
        assert result[1].startswith("done") and np.array_equal(grid(result), grid(alone))
    assert len({grid(result).tobytes() for result in together}) == len(students)


def test_what_is_kept_per_session_stays_bounded_over_many_new_sessions(served, monkeypatch):
    backend, demo, url = served
    monkeypatch.setattr(backend_module, "SESSIONS_KEPT", KEPT)
    for seed in range(3 * KEPT):
        client = Client(url, verbose=False, download_files=False)
        client.predict(*{**GOOD, "seed": seed, "num_images": 1, "steps": 2}.values(), api_name="/generate")
    assert len(backend.sampling_runs) == KEPT
    assert len(demo.state_holder.session_data) <= KEPT


def test_percentile_is_numpys_linear_one():
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5 and percentile([5.0], 95) == 5.0
