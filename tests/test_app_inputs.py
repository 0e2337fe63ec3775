"""Every Generate input reaches the backend as typed and gets a message naming it; the API page lists
only the page's actions, with named outputs; the checkpoint lists hold generators only."""

import concurrent.futures
import json

import gradio as gr
import helpers
import pytest
from gradio_client.exceptions import AppError
from helpers import make_tiny_checkpoint, served_client

from fastdiff.app.backend import Backend


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(backend, client) for an app whose checkpoints/ holds a tiny base model (T = 50) and a classifier."""
    root = tmp_path_factory.mktemp("app")
    make_tiny_checkpoint(root / "checkpoints" / "cifar10-base")
    evaluator = root / "checkpoints" / "evaluator-cifar10"
    evaluator.mkdir()
    (evaluator / "model.safetensors").write_bytes(b"")
    (evaluator / "config.json").write_text(json.dumps({"classifier": {"width": 32}}))
    backend = Backend(root / "checkpoints", root / "runs", root / "data.zip", root)
    for client in served_client(backend, root):
        yield backend, client


def generate(client, **changes):
    """A short Generate request (3 steps, 2 images) with changes."""
    return helpers.generate(client, **{"steps": 3, "num_images": 2, **changes})


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(steps=0), "steps must be between 1 and 50, got 0"),
        (dict(steps=None), "steps needs a whole number"),
        (dict(steps=100000), "steps must be between 1 and 50, got 100000"),
        (dict(steps=2.5), "steps must be a whole number, got 2.5"),
        (dict(num_images=0), "number of images must be between 1 and 16, got 0"),
        (dict(num_images=17), "number of images must be between 1 and 16, got 17"),
        (dict(eta=2), "eta must be between 0 and 1, got 2"),
        (dict(seed=1.5), "seed must be a whole number, got 1.5"),
        (dict(seed=-5), "seed must be between 0 and 2147483645 for 2 images, got -5"),
        (dict(guidance=1e30), "guidance weight must be between 0 and 10, got 1e\\+30"),
        (dict(guidance=None), "guidance weight must be a number between 0 and 10, got none"),
        (dict(stages="4"), "Value: .4. .* is not in the list of choices"),  # the radio's own check
    ],
)
def test_each_bad_value_is_named_in_its_message(served, changes, message):
    _, client = served
    with pytest.raises(AppError, match=message):
        generate(client, **changes)


def test_stages_are_taken_as_the_api_page_documents_them(served):
    _, client = served
    assert generate(client, stages="1")[1].startswith("done: step 3/3")


def test_the_api_page_lists_the_page_actions_with_named_outputs_and_free_text_classes(served):
    _, client = served
    info = client.view_api(return_format="dict", print_info=False)
    endpoints = info["named_endpoints"]
    assert sorted(endpoints) == [
        "/animations",
        "/compare",
        "/generate",
        "/lab_field",
        "/lab_sample",
        "/lab_train",
        "/learn",
        "/live",
        "/scrub",
        "/scrub_strip",
        "/stop_training",
        "/sweep",
        "/train",
    ]
    assert not info["unnamed_endpoints"]
    for name, endpoint in endpoints.items():
        assert all(not r["label"].startswith("value_") for r in endpoint["returns"]), name
    parameters = {p["parameter_name"]: p for p in endpoints["/generate"]["parameters"]}
    assert parameters["class_name"]["python_type"]["type"] == "str"
    sweep = {p["parameter_name"]: p for p in endpoints["/sweep"]["parameters"]}
    assert sweep["class_name"]["python_type"]["type"] == sweep["checkpoint"]["python_type"]["type"] == "str"
    assert parameters["stages"]["python_type"]["type"] == "Literal['1', '2', '3']"
    assert all(p["parameter_has_default"] for p in endpoints["/train"]["parameters"][1:])


def test_only_generators_are_offered_as_checkpoints(served):
    backend, _ = served
    assert backend.store.names() == ["cifar10-base"]


def test_cancel_waits_for_the_run_to_close_and_says_where_it_stopped(served):
    backend, _ = served
    run = backend.generate(**{**helpers.GOOD, "steps": 50, "num_images": 1})
    statuses = [next(run)[1] for _ in range(2)]  # "sampling with ...", then the first frame's
    assert statuses[-1].startswith("step ") and "/50 " in statuses[-1]
    with concurrent.futures.ThreadPoolExecutor(1) as cancel:
        message = cancel.submit(backend.cancelled)
        finished, _ = concurrent.futures.wait([message], timeout=0.3)
        assert not finished  # the run is still open
        run.close()  # what Gradio does to a cancelled run once its current step ends
        assert message.result(timeout=10) == f"cancelled at {statuses[-1]}"


def test_cancel_leaves_a_finished_run_and_an_empty_page_alone(tmp_path):
    make_tiny_checkpoint(tmp_path / "checkpoints" / "cifar10-base")
    backend = Backend(tmp_path / "checkpoints", tmp_path / "runs", tmp_path / "data.zip", tmp_path)
    assert backend.cancelled() == gr.skip()
    *_, last = backend.generate(**{**helpers.GOOD, "steps": 2, "num_images": 1})
    assert last[1].startswith("done: step 2/2")
    assert backend.cancelled() == gr.skip()


def test_using_the_last_image_before_any_generation_says_so():
    picture, caption = Backend.use_last_image(None)
    assert "No image generated yet" in caption
