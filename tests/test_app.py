"""The app end to end through gradio_client on a tiny checkpoint, served in-process on a free port."""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from helpers import GOOD, generate, png, wait_until, write_zip
from PIL import Image
from test_data import png_header

from fastdiff.eval.cost import effective_nfe

pytestmark = pytest.mark.slow  # a served app


def test_generation_returns_the_grid_and_its_png(served):
    _, client = served
    _, status, final, downloads = generate(client)
    assert status.startswith("done: step 10/10")
    assert np.asarray(Image.open(final)).shape == (4 * (2 * 34 + 2), 4 * (2 * 34 + 2), 3)
    assert [p.rsplit("/", 1)[1] for p in downloads] == ["samples.png"]
    assert Image.open(downloads[0]).size == (2 * 34 + 2, 2 * 34 + 2)


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(steps=0), "steps must be between 1 and 50, got 0"),
        (dict(steps=51), "steps must be between 1 and 50"),
        (dict(guidance=-1.0), "guidance weight must be between 0 and 10, got -1"),
        (dict(guidance=None), "guidance weight must be a number between 0 and 10, got none"),
        (dict(num_images=17), "number of images must be between 1 and 16, got 17"),
        (dict(seed=-3), "seed must be between 0"),
        (dict(class_name="zebra"), "unknown class 'zebra'"),
        (dict(sampler="Euler"), "'Euler' .* is not in the list of choices"),
        (dict(checkpoint="runs/plain", stages="2"), "runs/plain is a plain model: cascade with 2 stages needs"),
        (dict(attention=True), "attention variant: cifar10-attn not found in"),
        (dict(checkpoint="../../etc"), "checkpoint '../../etc' not found"),
    ],
)
def test_bad_input_gets_its_message_and_the_app_keeps_serving(served, changes, message):
    _, client = served
    with pytest.raises(AppError, match=message.replace("(", r"\(")):
        generate(client, **changes)
    assert generate(client, steps=2, num_images=1)[1].startswith("done")


def test_a_three_stage_cascade_streams_frames_of_every_resolution(served):
    _, client = served
    job = client.submit(*{**GOOD, "stages": "3"}.values(), api_name="/generate")
    _, status, final, downloads = job.result()
    assert status.startswith("done: step 14/14 · stage 3/3 at 32x32") and "`cifar10-cascade`" in status
    assert np.asarray(Image.open(final)).shape == (4 * (2 * 34 + 2), 4 * (2 * 34 + 2), 3)
    frames = [(status, frame) for frame, status, *_ in job.outputs() if frame]
    for size in (8, 16, 32):
        seen = [frame for status, frame in frames if f"at {size}x{size}" in status]
        assert seen, f"no frame of the {size}x{size} stage"
        assert np.asarray(Image.open(seen[0])).shape == (2 * 34 + 2, 2 * (2 * 34 + 2) + 4, 3)  # enlarged


def test_two_clients_at_once_both_get_their_own_images(served):
    _, client = served
    other = Client(client.src, verbose=False, download_files=client.output_dir)
    with ThreadPoolExecutor(2) as pool:
        together = list(
            pool.map(lambda c_seed: generate(c_seed[0], seed=c_seed[1], steps=30), [(client, 1), (other, 2)])
        )
    alone = [generate(client, seed=seed, steps=30) for seed in (1, 2)]
    for (_, _, _, files), (_, _, _, expected) in zip(together, alone):
        assert np.array_equal(np.asarray(Image.open(files[0])), np.asarray(Image.open(expected[0])))
    assert not np.array_equal(np.asarray(Image.open(together[0][3][0])), np.asarray(Image.open(together[1][3][0])))


def test_compare_runs_each_configuration_on_the_same_seed(served):
    _, client = served
    table = {
        "headers": ["sampler", "steps", "guidance", "variant", "stages"],
        "data": [["DDIM", 10, 2.0, "base", 1], ["DPM-Solver++", 5, 0.0, "base", 1], ["", "", "", "", ""]],
    }
    gallery, results, plot = client.predict("cifar10-base", "a", 3, 2, table, api_name="/compare")
    assert len(gallery) == 2 and plot is not None
    rows = results["data"]
    assert [(r[2], r[3], r[7], r[8]) for r in rows] == [("ddim", 10, "10 at 32x32", 10), ("dpm++", 5, "5 at 32x32", 5)]
    assert all(r[10] == "not measured yet" and float(r[9]) > 0 for r in rows)
    with pytest.raises(AppError, match="give two to four configurations"):
        client.predict("cifar10-base", "a", 3, 2, {**table, "data": table["data"][:1]}, api_name="/compare")
    with pytest.raises(AppError, match="configuration 2: steps must be between 1 and 50"):
        client.predict(
            "cifar10-base",
            "a",
            3,
            2,
            {**table, "data": [table["data"][0], ["DDIM", 99, 1, "base", 1]]},
            api_name="/compare",
        )


def test_compare_shows_eval_json_at_its_configuration_and_labels_it_elsewhere(served):
    backend, client = served
    path = backend.store.folder("cifar10-base") / "eval.json"
    path.write_text(
        json.dumps(
            {
                "sampler": "ddim",
                "steps": 10,
                "guidance": 2.0,
                "stages": 1,
                "n": 1000,
                "class_accuracy": 0.5,
                "kid": 0.02,
                "kid_std": 0.001,
                "fd": 3.0,
                "real_vs_real": {"class_accuracy": 0.9, "kid": 0.001, "fd": 0.5},
            }
        )
    )
    table = {
        "headers": ["sampler", "steps", "guidance", "variant", "stages"],
        "data": [["DDIM", 10, 2.0, "base", 1], ["DPM-Solver++", 5, 2.0, "base", 1]],
    }
    try:
        _, results, _ = client.predict("cifar10-base", "a", 3, 1, table, api_name="/compare")
    finally:
        path.unlink()
    numbers = "class acc. 50.0%, KID 0.0200 (real vs real 0.0010)"
    assert [row[10] for row in results["data"]] == [numbers, f"measured at DDIM-10, w=2: {numbers}"]


def test_compare_reports_a_cascade_nfe_per_resolution_and_its_effective_nfe(served):
    backend, client = served
    table = {
        "headers": ["sampler", "steps", "guidance", "variant", "stages"],
        "data": [["DDIM", 10, 2.0, "base", 1], ["DDIM", 10, 2.0, "base", 2]],
    }
    _, results, _ = client.predict("cifar10-base", "a", 3, 2, table, api_name="/compare")
    plain, cascade = results["data"]
    assert (plain[1], plain[5], plain[7], plain[8]) == ("cifar10-base", 1, "10 at 32x32", 10)
    assert (cascade[1], cascade[5], cascade[7]) == ("cifar10-cascade", 2, "5 at 16x16 + 5 at 32x32")
    latency = backend.store.load("cifar10-cascade").latency  # measured once, kept with the model
    assert cascade[8] == effective_nfe({16: 5, 32: 5}, latency) > 5


def train(client, dataset="", upload=None, epochs=1, warm_start="cifar10-base", cascade=False, freeze_base=False):
    return client.predict(
        dataset,
        handle_file(upload) if upload else None,
        epochs,
        4,
        "fp32",
        False,
        cascade,
        warm_start,
        freeze_base,
        api_name="/train",
    )


def test_training_runs_in_the_background_one_at_a_time_and_its_model_can_generate(served, tmp_path):
    backend, client = served
    classes = "abcdefghij"  # the tiny checkpoint's classes, so that it can warm-start this run
    data = write_zip(tmp_path / "data.zip", {f"{c}/{i}.png": png(i) for c in classes for i in range(2)})
    status = train(client, upload=data, epochs=300)
    assert "loading the dataset" in status or "training" in status
    with pytest.raises(AppError, match="a training run is already in progress"):
        train(client, upload=data)
    wait_until(lambda: backend.training.state.step >= 3, 120, "three training steps")
    assert generate(client, steps=3)[1].startswith("done")  # sampling goes on beside the training
    assert backend.training.running
    assert client.predict(api_name="/stop_training").startswith("Stopping")
    backend.training._thread.join(timeout=60)
    assert backend.training.state.phase == "stopped"
    run = "runs/" + backend.training.state.out_dir.name
    assert run in backend.store.names()
    assert generate(client, checkpoint=run, steps=3)[1].startswith("done")


def test_the_cascade_switch_trains_a_cascade(served, tmp_path):
    backend, client = served
    data = write_zip(tmp_path / "data.zip", {f"{c}/{i}.png": png(i) for c in "abcdefghij" for i in range(2)})
    with pytest.raises(AppError, match="warm start: cifar10-cascade is a cascade; tick 'cascade'"):
        train(client, upload=data, warm_start="cifar10-cascade")
    with pytest.raises(AppError, match="keeping the base fixed trains only a cascade's added layers"):
        train(client, upload=data, freeze_base=True)
    train(client, upload=data, cascade=True, freeze_base=True)  # warm-started from the plain cifar10-base
    backend.training._thread.join(timeout=120)
    assert backend.training.state.phase == "finished", backend.training.state.message
    run = "runs/" + backend.training.state.out_dir.name
    assert run.endswith("-cascade") and backend.store.is_cascade(run)
    assert backend.training.trainer.config.freeze_base
    base = backend.store.load("cifar10-base").model.state_dict()
    trained = backend.store.load(run).model.state_dict()
    assert all(torch.equal(base[k].half(), trained[k].half()) for k in base)  # only the added layers moved
    assert generate(client, checkpoint=run, stages="3", steps=4)[1].startswith("done: step 6/6 · stage 3/3")


@pytest.mark.parametrize(
    "dataset, upload, message",
    [
        ("/etc/passwd", None, "other paths are not read"),
        ("../../shared.zip", None, "other paths are not read"),
        ("shared.zip", None, "not found; upload a .zip"),
        ("", "not-a-zip.zip", "is not a .zip file"),
        ("", "no-images.zip", "has no images in class folders"),
        ("", "corrupt.zip", "corrupt.zip is not a readable .zip file"),
    ],
)
def test_bad_training_input_gets_its_message(served, tmp_path, dataset, upload, message):
    _, client = served
    (tmp_path / "not-a-zip.zip").write_text("hello")
    write_zip(tmp_path / "no-images.zip", {"a/readme.txt": b"text"})
    zipped = write_zip(tmp_path / "corrupt.zip", {"a/1.png": png(1)}).read_bytes()
    (tmp_path / "corrupt.zip").write_bytes(zipped.replace(b"PK\x01\x02", b"PK\x00\x00"))  # its central directory
    with pytest.raises(AppError, match=message):
        train(client, dataset, tmp_path / upload if upload else None)


def test_a_training_image_over_the_pixel_limit_fails_the_run_with_one_line(served, tmp_path):
    backend, client = served
    data = write_zip(tmp_path / "data.zip", {"a/1.png": png(1), "b/big.png": png_header(20000, 20000)})
    train(client, upload=data)
    wait_until(lambda: backend.training.state.phase != "loading the dataset", 60, "the dataset to load")
    message = backend.training.state.message
    assert backend.training.state.phase == "failed" and "b/big.png: over 178,956,970 pixels, more than" in message
    assert "\n" not in message and "Error" not in message


def test_cancel_stops_the_sampler_on_the_server(served):
    backend, client = served
    model = backend.store.load("cifar10-base").model
    calls = []

    def slow(*args, **kwargs):
        calls.append(time.monotonic())
        time.sleep(0.02)
        return forward(*args, **kwargs)

    forward, model.forward = model.forward, slow
    try:
        job = client.submit(*{**GOOD, "sampler": "DDPM", "steps": 50}.values(), api_name="/generate")
        wait_until(lambda: len(calls) >= 5, 60, "five model calls")
        job.cancel()
        time.sleep(0.5)
        count = len(calls)
        time.sleep(1.0)
        assert len(calls) == count < 50
    finally:
        del model.forward


def test_a_request_waiting_for_a_lane_shows_its_place_in_line(served):
    backend, client = served
    model = backend.store.load("cifar10-base").model
    released, forward = threading.Event(), model.forward
    model.forward = lambda *args, **kwargs: (released.wait(60), forward(*args, **kwargs))[1]
    try:
        busy = [client.submit(*{**GOOD, "steps": steps}.values(), api_name="/generate") for steps in (3, 4)]
        wait_until(lambda: len(backend.sampling.running) == 2, 60, "both lanes to be busy")
        waiting = client.submit(*{**GOOD, "steps": 5}.values(), api_name="/generate")
        wait_until(lambda: any("1st in line" in o[1] for o in waiting.outputs()), 60, "the place in line")
        other = Client(client.src, verbose=False, download_files=client.output_dir)  # a cancel ends all of a session's
        leaving = other.submit(*{**GOOD, "steps": 6}.values(), api_name="/generate")
        wait_until(lambda: any("2nd in line" in o[1] for o in leaving.outputs()), 60, "the second place")
        leaving.cancel()
        wait_until(lambda: len(backend.sampling.waiting) == 1, 10, "the cancelled request to leave the line")
    finally:
        released.set()
        del model.forward
    assert waiting.result()[1].startswith("done: step 5/5") and all(job.result()[1].startswith("done") for job in busy)
