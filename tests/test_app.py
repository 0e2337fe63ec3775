"""The app end to end through gradio_client on a tiny checkpoint, served in-process on a free port."""
import socket
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from PIL import Image

import app
from conftest import make_tiny_checkpoint
from fastdiff.app_backend import Backend

GOOD = dict(checkpoint="cifar10-base", class_name="c", sampler="DDIM", steps=10, guidance=2.0,
            attention=False, stages=1, seed=0, num_images=4, eta=0.0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(backend, client) for an app whose checkpoints/ holds one tiny base model."""
    root = tmp_path_factory.mktemp("app")
    make_tiny_checkpoint(root / "checkpoints" / "cifar10-base")
    backend = Backend(root / "checkpoints", root / "runs")
    demo = app.build_app(backend)
    port = free_port()
    app.launch(demo, port=port, prevent_thread_lock=True, quiet=True)
    yield backend, Client(f"http://127.0.0.1:{port}/", verbose=False)
    demo.close()


def generate(client, **changes):
    return client.predict(*{**GOOD, **changes}.values(), api_name="/generate")


def test_generation_returns_the_grid_png_gif_and_mp4(served):
    _, client = served
    _, status, final, downloads = generate(client)
    assert status.startswith("done: step 10/10")
    assert np.asarray(Image.open(final)).shape == (4 * (2 * 34 + 2), 4 * (2 * 34 + 2), 3)
    assert [p.rsplit("/", 1)[1] for p in downloads] == ["samples.png", "denoising.gif", "denoising.mp4"]
    assert Image.open(downloads[0]).size == (2 * 34 + 2, 2 * 34 + 2)


@pytest.mark.parametrize("changes, message", [
    (dict(steps=0), "Value 0 is less than minimum value 1"),  # the slider's own check
    (dict(steps=51), "steps must be between 1 and 50"),
    (dict(guidance=-1.0), "guidance weight must be a finite number >= 0"),
    (dict(guidance=None), "guidance weight and eta need a value"),
    (dict(num_images=17), "Value 17 is greater than maximum value 16"),
    (dict(seed=-3), "seed must be between 0"),
    (dict(class_name="zebra"), "unknown class 'zebra'"),
    (dict(sampler="Euler"), "'Euler' .* is not in the list of choices"),
    (dict(stages=2), "no cascade checkpoint shipped yet"),
    (dict(attention=True), "attention variant: no checkpoint shipped yet"),
    (dict(checkpoint="../../etc"), "checkpoint '../../etc' not found"),
])
def test_bad_input_gets_its_message_and_the_app_keeps_serving(served, changes, message):
    _, client = served
    with pytest.raises(AppError, match=message.replace("(", r"\(")):
        generate(client, **changes)
    assert generate(client, steps=2, num_images=1)[1].startswith("done")


def test_two_clients_at_once_both_get_their_own_images(served):
    _, client = served
    other = Client(client.src, verbose=False)
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(lambda c_seed: generate(c_seed[0], seed=c_seed[1], steps=30),
                                 [(client, 1), (other, 2)]))
    alone = [generate(client, seed=seed, steps=30) for seed in (1, 2)]
    for (_, _, _, files), (_, _, _, expected) in zip(together, alone):
        assert np.array_equal(np.asarray(Image.open(files[0])), np.asarray(Image.open(expected[0])))
    assert not np.array_equal(np.asarray(Image.open(together[0][3][0])), np.asarray(Image.open(together[1][3][0])))
