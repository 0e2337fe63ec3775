"""The app's sampling line (app/batching.py): requests that wait for the same model and plan run as one
batch and each gets its solo images (to float rounding: a convolution's last bits may depend on the
batch size); a waiting request knows its place; cancelling leaves the
line or stops a batch nobody wants; a failing batch tells each of its requests."""

import threading

import pytest
import torch
from helpers import request, wait_until

from fastdiff.app.batching import Place, SamplingQueue, in_line
from fastdiff.app.generate import run_steps
from fastdiff.diffusion.sampling import final_images


@pytest.fixture
def line():
    return SamplingQueue(torch.device("cpu"), lanes=1)


def batch_sizes(model) -> list[int]:
    """Record the batch of every forward call of model."""
    sizes, forward = [], model.forward

    def counted(x_t, *args, **kwargs):
        sizes.append(x_t.shape[0])
        return forward(x_t, *args, **kwargs)

    model.forward = counted
    return sizes


def test_requests_for_the_same_plan_run_as_one_batch_and_get_their_solo_images(store, line):
    loaded = store.load("cifar10-base")
    same = [
        request(store, seed=seed, num_images=n, class_name=name) for seed, n, name in [(0, 3, "b"), (40, 2, "random")]
    ]
    other = request(store, seed=7, steps=5)
    alone = [final_images(run_steps(loaded, made, "fp32")) for made in [*same, other]]
    sizes = batch_sizes(loaded.model)
    with line.changed:  # the lane waits until all three are in line
        jobs = [line.submit(loaded, made, "fp32") for made in [*same, other]]
    results = [final_images(job.results()) for job in jobs]
    for got, expected in zip(results, alone):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    assert sizes == [5] * 10 + [3] * 5  # 3 + 2 images in one batch of 10 steps, then the other 3 in 5


def test_a_batch_holds_at_most_max_images_and_the_oldest_always_runs(store, line):
    loaded = store.load("cifar10-base")
    line.max_images = 4
    sizes = batch_sizes(loaded.model)
    with line.changed:
        jobs = [line.submit(loaded, request(store, num_images=n, steps=2), "fp32") for n in (5, 2, 3, 2)]
    for job in jobs:
        list(job.results())
    assert sizes == [5] * 2 + [4] * 2 + [3] * 2  # 5 alone (over 4), 2 + 2, then 3


def test_a_waiting_request_knows_its_place_and_wait(store, line):
    loaded = store.load("cifar10-base")
    released, forward = threading.Event(), loaded.model.forward
    loaded.model.forward = lambda *a, **k: (released.wait(30), forward(*a, **k))[1]
    with line.changed:
        first = line.submit(loaded, request(store, steps=2), "fp32")
        second = line.submit(loaded, request(store, steps=3), "fp32")  # another plan: a batch of its own
        third = line.submit(loaded, request(store, steps=3, seed=9), "fp32")  # joins the second
    first.started.wait(30)
    place = next(line.wait(third))
    assert place == Place(1, None)  # the model has not been timed yet
    assert in_line(place) == "1st in line"
    released.set()
    for job in (first, second, third):
        list(job.results())
    assert line.seconds_per_image_step["cifar10-base"] > 0
    assert in_line(Place(3, 4.4)) == "3rd in line, about 4 s to wait"
    assert [in_line(Place(n, None)).split(" ")[0] for n in (2, 11, 12, 13, 21, 22, 101)] == [
        "2nd",
        "11th",
        "12th",
        "13th",
        "21st",
        "22nd",
        "101st",
    ]


def test_cancelling_leaves_the_line_or_stops_a_batch_nobody_wants(store, line):
    loaded = store.load("cifar10-base")
    calls, forward, released = [], loaded.model.forward, threading.Event()

    def slow(*args, **kwargs):
        calls.append(1)
        released.wait(30)
        return forward(*args, **kwargs)

    loaded.model.forward = slow
    running = line.submit(loaded, request(store, steps=50), "fp32")
    waiting = line.submit(loaded, request(store, steps=4), "fp32")
    running.started.wait(30)
    line.cancel(waiting)
    assert waiting not in line.waiting
    line.cancel(running)
    released.set()
    wait_until(lambda: not line.running, 30, "the cancelled batch to stop")
    assert len(calls) < 50


def test_a_failing_batch_raises_in_each_of_its_requests(store, line):
    loaded = store.load("cifar10-base")

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    loaded.model.forward = broken
    with line.changed:
        jobs = [line.submit(loaded, request(store, seed=seed), "fp32") for seed in (0, 10)]
    for job in jobs:
        with pytest.raises(RuntimeError, match="out of memory"):
            list(job.results())
