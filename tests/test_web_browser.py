"""The exported browser edition in headless Chromium (issue 32, item 7): a site exported from tiny
checkpoints, served locally with the isolation headers, loads; every sampler's final images equal
`fastdiff`'s for the same seed, class, steps and guidance within 2/255; Cancel stops within one step; the
live controls redraw to the picture of their last value; bad input and a damaged model get a sentence on
the page. The runtime is the pinned onnxruntime-web (downloaded once into $FASTDIFF_CACHE or
~/.cache/fastdiff)."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import CHROMIUM, CLASSES, browser_page, make_tiny_checkpoint

from fastdiff.diffusion.sampling import make_plan, noise_between, sample, sample_steps
from fastdiff.diffusion.schedule import NoiseSchedule
from fastdiff.images import to_uint8
from fastdiff.nn.checkpoint import load_model
from fastdiff.web.serve import serve_in_background
from fastdiff.web.site import DEFAULT_MODELS, export_web

pytestmark = pytest.mark.slow
pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
pytest.importorskip("onnxruntime", reason="needs the export packages (pip install -r requirements-test.txt)")
if not shutil.which(CHROMIUM):
    pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)", allow_module_level=True)

TOLERANCE = 2  # of 255, after conversion to uint8
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("web")
    base = make_tiny_checkpoint(root / "tiny-base", prediction="v")
    student = make_tiny_checkpoint(root / "tiny-student", guidance_embedding=True, distilled_steps=2, prediction="v")
    folder = export_web(root / "site", [base, student]).folder
    server, url = serve_in_background(folder)
    yield {"folder": folder, "url": url, "base": base, "student": student}
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def page(site):
    for page in browser_page(site["url"]):
        page.wait_for_function("document.body.dataset.state === 'ready'", timeout=60_000)
        yield page


def generate(page, sampler, steps="", guidance="2", seed="3", images="2", class_index=1, model="tiny-base"):
    page.select_option("#class", str(class_index))
    page.select_option("#sampler", sampler)
    if sampler != "Distilled (one pass per step)":
        page.select_option("#model", model)
    for field, value in (("#steps", steps), ("#guidance", guidance), ("#seed", seed), ("#images", images)):
        page.fill(field, str(value))
    page.click("#generate")
    page.wait_for_function("['done', 'error', 'cancelled'].includes(document.body.dataset.state)", timeout=120_000)
    return page.evaluate("document.body.dataset.state")


def page_images(page, hook="lastImages") -> np.ndarray:
    images = page.evaluate(f"window.fastdiff.{hook}.map((image) => Array.from(image))")
    return np.array(images, np.uint8).reshape(len(images), 32, 32, 3)


def python_images(checkpoint, sampler, steps, guidance, seed, count, class_index, start_noise=None):
    model, diffusion_config, _ = load_model(checkpoint)
    schedule = NoiseSchedule(diffusion_config)
    plan = make_plan(model, schedule, sampler, steps, guidance)
    labels, seeds = torch.full((count,), class_index), list(range(seed, seed + count))
    if start_noise is None:
        return to_uint8(sample(model, schedule, labels, seeds, plan))
    *_, last = sample_steps(model, schedule, labels, seeds, plan, start_noise=start_noise)
    return to_uint8(last.x_t)


def test_the_page_loads_and_says_how_it_runs(page):
    assert "WASM" in page.inner_text("#backend") and "2 models" in page.inner_text("#status")
    assert page.evaluate("self.crossOriginIsolated")  # the served headers allow threads
    assert [page.evaluate(f"document.querySelector('#class').options[{i}].text") for i in range(2)] == list(CLASSES[:2])


@pytest.mark.parametrize(
    "sampler, key, steps",
    [("DDIM", "ddim", 6), ("DPM-Solver++", "dpm++", 6), ("DPM-Solver++ SDE", "dpm++sde", 6)],
)
def test_each_sampler_makes_the_images_python_makes(page, site, sampler, key, steps):
    assert generate(page, sampler, steps=steps, guidance="2", seed="3", images="2") == "done"
    expected = python_images(site["base"], key, steps, 2.0, 3, 2, 1)
    assert np.abs(page_images(page).astype(int) - expected).max() <= TOLERANCE
    assert page.evaluate("window.fastdiff.lastRun.modelSeconds") > 0


def test_the_student_makes_the_images_python_makes(page, site):
    assert generate(page, "Distilled (one pass per step)", steps="2", guidance="3", seed="5", images="3") == "done"
    expected = python_images(site["student"], "ddim", 2, 3.0, 5, 3, 1)
    assert np.abs(page_images(page).astype(int) - expected).max() <= TOLERANCE


def test_cancel_stops_within_one_step(page):
    page.select_option("#sampler", "DDIM")
    page.fill("#steps", "50")
    page.fill("#images", "16")
    page.click("#generate")
    page.wait_for_function("/^step [1-9]/.test(document.querySelector('#progress').textContent)")
    # Cancel in the same turn as reading the step the page has drawn (a tiny model runs steps in milliseconds)
    shown = page.evaluate(
        "document.querySelector('#cancel').click() || document.querySelector('#progress').textContent"
    )
    asked = int(shown.split()[1].split("/")[0])
    page.wait_for_function("document.body.dataset.state === 'cancelled'", timeout=30_000)
    stopped = int(page.inner_text("#progress").split("after step ")[1])
    assert asked <= stopped <= asked + 2  # the step the worker ran as Cancel came, at most one more
    assert generate(page, "DDIM", steps=4, images="1") == "done"  # the worker serves the next request


def test_the_live_picture_follows_the_controls_to_their_last_value(page, site):
    passes = page.evaluate("window.fastdiff.livePasses")
    page.select_option("#live-class", "2")
    for value in ("0.5", "1.5", "3.5"):  # faster than a pass: only the newest setting is drawn
        page.fill("#live-guidance", value)
        page.dispatch_event("#live-guidance", "input")
    page.wait_for_function(
        f"window.fastdiff.livePasses > {passes} && document.body.dataset.live === 'done'", timeout=60_000
    )
    page.wait_for_timeout(500)
    page.wait_for_function("document.body.dataset.live === 'done'")
    seed, other = (int(page.input_value(f"#live-{name}")) for name in ("seed", "other-seed"))
    fraction = float(page.input_value("#live-between"))
    start = noise_between([seed], [other], fraction, 3, 32, 32)
    expected = python_images(site["student"], "ddim", 2, 3.5, seed, 1, 2, start_noise=start)
    assert np.abs(page_images(page, "liveImages")[:1].astype(int) - expected).max() <= TOLERANCE
    assert "ms" in page.inner_text("#live-time")


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"steps": "0"}, "steps must be between 1 and 50, got 0"),
        ({"steps": "100000"}, "steps must be between 1 and 50, got 100000"),
        ({"guidance": "NaN"}, "guidance weight must be between 0 and 10, got nan"),
        ({"guidance": "11"}, "guidance weight must be between 0 and 10, got 11"),
        ({"seed": "-1"}, "seed must be between 0 and"),
        ({"images": "17"}, "number of images must be between 1 and 16, got 17"),
        ({"sampler": "Distilled (one pass per step)", "steps": "4"}, "distilled for DDIM with 2 steps"),
    ],
)
def test_bad_input_gets_the_apps_message_on_the_page(page, changes, message):
    settings = {"sampler": "DDIM", "steps": "4"} | changes
    assert generate(page, **settings) == "error"
    assert message in page.inner_text("#message")


def test_a_damaged_model_is_named_on_the_page_and_the_others_still_work(page, site, tmp_path):
    damaged = tmp_path / "site"
    shutil.copytree(site["folder"], damaged)
    model = damaged / "models" / "tiny-student.onnx"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    server, url = serve_in_background(damaged)
    try:
        page.goto(url)
        page.wait_for_function("['ready', 'error'].includes(document.body.dataset.state)", timeout=60_000)
        assert "tiny-student" in page.inner_text("#models")
        assert generate(page, "DDIM", steps=3, images="1") == "done"
    finally:
        server.shutdown()
        server.server_close()
        page.goto(site["url"])
        page.wait_for_function("document.body.dataset.state === 'ready'", timeout=60_000)


def test_the_webgpu_build_runs_on_wasm_where_the_browser_has_no_webgpu(page, site, tmp_path):
    folder = export_web(tmp_path / "site", [site["base"]], build="webgpu").folder
    server, url = serve_in_background(folder)
    try:
        page.goto(url)
        page.wait_for_function("document.body.dataset.state === 'ready'", timeout=60_000)
        assert "WASM" in page.inner_text("#backend")  # headless Chromium here offers no WebGPU adapter
        assert generate(page, "DDIM", steps=3, images="1") == "done"
        expected = python_images(site["base"], "ddim", 3, 2.0, 3, 1, 1)
        assert np.abs(page_images(page).astype(int) - expected).max() <= TOLERANCE
    finally:
        server.shutdown()
        server.server_close()
        page.goto(site["url"])
        page.wait_for_function("document.body.dataset.state === 'ready'", timeout=60_000)


@pytest.mark.skipif(
    not os.environ.get("FASTDIFF_SCREENSHOTS"),
    reason="retakes the README's screenshots only with FASTDIFF_SCREENSHOTS=assets",
)
def test_readme_screenshot_of_the_page_with_the_shipped_models(page, tmp_path):
    folder = export_web(tmp_path / "site", [ROOT / "checkpoints" / name for name in DEFAULT_MODELS]).folder
    server, url = serve_in_background(folder)
    try:
        page.set_viewport_size({"width": 1280, "height": 1000})
        page.goto(url)
        page.wait_for_function("document.body.dataset.state === 'ready'", timeout=120_000)
        page.wait_for_function("document.body.dataset.live === 'done'", timeout=60_000)
        class_index = page.evaluate(
            "Array.from(document.querySelector('#class').options).find(o => o.text === 'frog').value"
        )
        assert (
            generate(
                page, "DPM-Solver++", steps=20, images="16", seed="0", class_index=class_index, model="cifar10-base"
            )
            == "done"
        )
        page.fill("#replay", "10")
        page.dispatch_event("#replay", "input")
        page.wait_for_timeout(500)
        shots = ROOT / os.environ["FASTDIFF_SCREENSHOTS"]
        page.screenshot(path=str(shots / "web-page.png"), full_page=True)
    finally:
        server.shutdown()
        server.server_close()
