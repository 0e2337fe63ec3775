"""The app in a real browser (Debian's Chromium through Playwright): frames stream into the page while
sampling, and every tab renders. Saves the README's screenshots to assets/app-<tab>.png."""
import shutil
import time
from pathlib import Path

import pytest

import app
from conftest import make_tiny_checkpoint
from fastdiff.app_backend import Backend
from test_app import free_port, png, write_zip

CHROMIUM = "/usr/bin/chromium"
ASSETS = Path(__file__).resolve().parent.parent / "assets"
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
if not shutil.which(CHROMIUM):
    pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """A browser page on an app whose tiny base model has T = 300, so that DDPM runs for seconds."""
    root = tmp_path_factory.mktemp("browser")
    make_tiny_checkpoint(root / "checkpoints" / "cifar10-base", num_timesteps=300)
    demo = app.build_app(Backend(root / "checkpoints", root / "runs", root / "shared.zip", root))
    port = free_port()
    app.launch(demo, port=port, prevent_thread_lock=True, quiet=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(f"http://127.0.0.1:{port}/")
        page.get_by_role("button", name="Generate", exact=True).wait_for()
        yield page
        browser.close()
    demo.close()


def screenshot(page, tab: str) -> None:
    ASSETS.mkdir(exist_ok=True)
    page.screenshot(path=str(ASSETS / f"app-{tab}.png"), full_page=True)


def test_generate_streams_intermediate_frames_before_the_final_grid(page):
    page.get_by_label("DDPM").check()
    steps = page.locator("#steps input[type=number]")
    steps.fill("300")
    steps.press("Enter")
    page.locator("#generate").click()
    frames = []
    deadline = time.monotonic() + 120
    while not page.locator("#final img").count() and time.monotonic() < deadline:
        source = page.locator("#live img").first.get_attribute("src") if page.locator("#live img").count() else None
        if source and source not in frames:
            frames.append(source)
        time.sleep(0.05)
    assert page.locator("#final img").count(), "no final grid within 2 minutes"
    assert len(frames) >= 2, f"only {len(frames)} distinct frame(s) arrived before the final grid"
    page.get_by_text("done: step 300/300").wait_for()
    screenshot(page, "generate")


def test_cancel_stops_a_run_at_once(page):
    page.locator("#generate").click()
    page.get_by_text("step ").first.wait_for()
    page.locator("#cancel").click()
    time.sleep(0.5)
    status = page.locator("#status").inner_text()
    time.sleep(1.5)
    assert page.locator("#status").inner_text() == status and "done" not in status
    assert not page.locator("#final img").count()


def test_compare_tab(page):
    page.get_by_role("tab", name="Compare").click()
    page.locator("#compare").click()
    page.locator("#compare-plot img, #compare-plot svg, #compare-plot canvas").first.wait_for(timeout=120_000)
    time.sleep(1)
    screenshot(page, "compare")


def test_train_tab(page, tmp_path):
    page.get_by_role("tab", name="Train").click()
    data = write_zip(tmp_path / "data.zip", {f"{c}/{i}.png": png(i) for c in "abcdefghij" for i in range(2)})
    page.locator("#dataset-upload input[type=file]").set_input_files(str(data))
    page.get_by_label("batch size").fill("4")
    page.get_by_label("epochs").fill("2")
    page.get_by_label("warm start from").fill("cifar10-base")
    page.get_by_label("warm start from").press("Enter")
    page.locator("#train").click()
    try:
        page.get_by_text("finished").wait_for(timeout=120_000)
    finally:
        screenshot(page, "train")
    page.get_by_text("latest preview").wait_for()
    time.sleep(1.5)  # the last poll draws the loss plot
    screenshot(page, "train")


def test_learn_tab(page):
    page.get_by_role("tab", name="Learn").click()
    page.get_by_role("button", name="use the last generated image").click()
    page.get_by_text("alpha_bar =").wait_for(timeout=30_000)
    time.sleep(1)
    screenshot(page, "learn")
