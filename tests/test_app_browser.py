"""The app in a real browser (Debian's Chromium through Playwright): frames stream into the page while
sampling, and every tab renders. Screenshots app-<tab>.png go to a temporary folder. With
FASTDIFF_SCREENSHOTS=assets (a folder relative to the repository), one more test serves the shipped
checkpoints and retakes the README's screenshots there; run it alone (-k readme_screenshots), since
the module's page fixture keeps its own Playwright session open."""

import os
import re
import shutil
import time
from pathlib import Path

import pytest
from helpers import CHROMIUM, CLASSES, make_tiny_checkpoint, png, serve, set_steps, write_zip

from fastdiff.app.backend import Backend
from fastdiff.app.compare import DEFAULT_CONFIGS
from fastdiff.app.forward_strip import recognisable_t
from fastdiff.config import DiffusionConfig
from fastdiff.data import default_dataset
from fastdiff.diffusion.schedule import NoiseSchedule

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
if not shutil.which(CHROMIUM):
    pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """A browser page on an app whose tiny base model has T = 1000, so that DDPM can run for a minute."""
    root = tmp_path_factory.mktemp("browser")
    make_tiny_checkpoint(root / "checkpoints" / "cifar10-base", num_timesteps=1000)
    yield from serve(Backend(root / "checkpoints", root / "runs", root / "shared.zip", root))


@pytest.fixture(scope="module")
def screenshot(tmp_path_factory):
    """screenshot(page, tab) writes app-<tab>.png to a temporary folder."""
    folder = tmp_path_factory.mktemp("screenshots")
    return lambda page, tab: page.screenshot(path=str(folder / f"app-{tab}.png"), full_page=True)


def test_generate_streams_intermediate_frames_before_the_final_grid(page, screenshot):
    page.get_by_label("DDPM").check()
    set_steps(page, 300)
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
    sync_api.expect(page.locator("#final img")).to_have_attribute("src", re.compile(r"\S"))
    page.locator("#make-animations").click()
    sync_api.expect(page.locator("#animations")).to_contain_text(re.compile(r"denoising\s*\.mp4"), timeout=60_000)
    screenshot(page, "generate")


def test_cancel_stops_a_run_at_once(page):
    set_steps(page, 1000)  # a minute of sampling: it cannot end before the cancel lands
    status = page.locator("#status")
    page.locator("#generate").click()
    sync_api.expect(status).to_have_text(re.compile(r"^\s*step \d+/1000 "), timeout=60_000)  # this run streams
    page.locator("#cancel").click()
    page.locator("#status").get_by_text("cancelled").wait_for(timeout=30_000)  # the page ended the event
    stopped = status.inner_text()
    time.sleep(1.5)  # a run still going would have streamed ~15 more frames by now
    assert status.inner_text() == stopped and "done" not in stopped
    assert not page.locator("#final img").count()


def test_compare_tab_shows_a_picture_and_a_result_row_per_configuration(page, screenshot):
    page.get_by_role("tab", name="Compare").click()
    page.locator("#compare").click()
    page.locator("#compare-plot img").first.wait_for(timeout=120_000)  # the figure; the spinner is an svg
    configurations = len(DEFAULT_CONFIGS)  # no cascade checkpoint here, so no cascade row
    results = page.locator("#compare-results")
    sync_api.expect(results.get_by_role("row")).to_have_count(1 + configurations)  # the header, then one each
    for steps in (config[1] for config in DEFAULT_CONFIGS):
        sync_api.expect(results).to_contain_text(f"{steps} at 32x32")  # the row's NFE column
    sync_api.expect(page.locator("#compare-gallery img")).to_have_count(configurations)
    screenshot(page, "compare")


def test_train_tab_finishes_and_shows_the_preview_and_loss_plot(page, tmp_path, screenshot):
    page.get_by_role("tab", name="Train").click()
    data = write_zip(tmp_path / "data.zip", {f"{c}/{i}.png": png(i) for c in CLASSES for i in range(2)})
    page.locator("#dataset-upload input[type=file]").set_input_files(str(data))
    page.get_by_label("batch size").fill("4")
    page.get_by_label("epochs").fill("2")
    page.get_by_label("warm start from").fill("cifar10-base")
    page.get_by_label("warm start from").press("Enter")
    page.locator("#train").click()
    try:
        page.get_by_text("finished").wait_for(timeout=120_000)
        sync_api.expect(page.locator("#train-preview img")).to_have_attribute("src", re.compile(r"\S"))
        sync_api.expect(page.locator("#train-loss img").first).to_be_visible(timeout=10_000)  # the last poll draws it
    finally:
        screenshot(page, "train")


def test_learn_tab_noises_the_last_generated_image(page, screenshot):
    page.get_by_role("tab", name="Learn").click()
    page.get_by_role("button", name="use the last generated image").click()
    page.get_by_text("alpha_bar =").wait_for(timeout=30_000)
    # t starts where the picture still shows through: the last t with SNR >= 16 of this T = 1000 schedule
    t = recognisable_t(NoiseSchedule(DiffusionConfig(num_timesteps=1000)))
    sync_api.expect(page.get_by_text(re.compile(rf"^t = {t}: x_t = "))).to_be_visible()
    sync_api.expect(page.locator("#learn-input img")).to_have_count(1)
    sync_api.expect(page.locator("#learn-noised img")).to_have_attribute("src", re.compile(r"\S"))
    screenshot(page, "learn")


readme_screenshots = pytest.mark.skipif(
    not os.environ.get("FASTDIFF_SCREENSHOTS"),
    reason="retakes the README's screenshots only with FASTDIFF_SCREENSHOTS=assets",
)


def shipped_pages(tmp_path, needed: str):
    """(page, shot) on the app as `python app.py` in the repository serves it (the sweep table in assets/
    is read too); shot(page, tab) writes app-<tab>.png to $FASTDIFF_SCREENSHOTS."""
    if not (ROOT / "checkpoints" / needed / "model.safetensors").exists():
        pytest.skip(f"no shipped {needed}")
    folder = ROOT / os.environ["FASTDIFF_SCREENSHOTS"]
    folder.mkdir(parents=True, exist_ok=True)
    shot = lambda page, tab: page.screenshot(path=str(folder / f"app-{tab}.png"), full_page=True)  # noqa: E731
    for page in serve(Backend(ROOT / "checkpoints", tmp_path / "runs", default_dataset(), ROOT)):
        yield page, shot


@readme_screenshots
def test_readme_screenshots_with_the_shipped_checkpoints(tmp_path):
    for page, shot in shipped_pages(tmp_path, "cifar10-base"):
        # the class list arrives with the page's load event: typing before it would be overwritten
        sync_api.expect(page.get_by_label("class", exact=True).first).to_have_value("airplane", timeout=30_000)
        page.get_by_label("class", exact=True).first.fill("frog")
        page.get_by_label("class", exact=True).first.press("Enter")
        page.get_by_label("DDIM", exact=True).check()
        set_steps(page, 50)
        page.locator("#generate").click()
        page.get_by_text("done: step 50/50").wait_for(timeout=120_000)
        page.locator("#make-animations").click()
        sync_api.expect(page.locator("#animations")).to_contain_text(re.compile(r"denoising\s*\.mp4"), timeout=60_000)
        time.sleep(1)
        shot(page, "generate")
        page.get_by_role("tab", name="Compare").click()
        page.locator("#compare").click()
        page.locator("#compare-plot img").first.wait_for(timeout=300_000)  # the figure; the spinner is an svg
        time.sleep(1)
        shot(page, "compare")
        page.get_by_role("tab", name="Train").click()
        data = write_zip(tmp_path / "data.zip", {f"{c}/{i}.png": png(i) for c in "abcdefghij" for i in range(4)})
        page.locator("#dataset-upload input[type=file]").set_input_files(str(data))
        page.get_by_label("batch size").fill("8")
        page.get_by_label("epochs").fill("3")
        page.locator("#train").click()
        page.get_by_text("finished").wait_for(timeout=300_000)
        page.get_by_text("latest preview").wait_for()
        time.sleep(1.5)
        shot(page, "train")
        page.get_by_role("tab", name="Learn").click()
        page.get_by_role("button", name="use the last generated image").click()
        page.get_by_text("alpha_bar =").wait_for(timeout=30_000)
        time.sleep(1)
        shot(page, "learn")
        page.get_by_role("tab", name="Sweep").click()
        page.get_by_label("class", exact=True).nth(2).fill("cat")
        page.get_by_label("class", exact=True).nth(2).press("Enter")
        page.locator("#sweep").click()
        page.get_by_text("5/5 · guidance w swept").wait_for(timeout=300_000)
        time.sleep(1)
        shot(page, "sweep")
        page.get_by_role("tab", name="2D lab").click()
        page.locator("#lab-train").click()
        page.locator("#lab-status").get_by_text("done:").wait_for(timeout=120_000)
        page.locator("#lab-sample").click()
        time.sleep(15)  # the animation plays for a few seconds and stays on its last frame
        shot(page, "lab")


@readme_screenshots
def test_readme_live_screenshot_with_the_shipped_checkpoints(tmp_path):
    for page, shot in shipped_pages(tmp_path, "cifar10-distilled-2"):
        page.get_by_role("tab", name="Live").click()
        page.locator("#live-caption").get_by_text("ms ·").wait_for(timeout=60_000)
        page.get_by_label("class of the pictures").fill("frog")
        page.get_by_label("class of the pictures").press("Enter")
        page.locator("#live-caption").get_by_text("frog").wait_for(timeout=60_000)
        page.get_by_role("radio", name="16").check()
        page.locator("#live-caption").get_by_text("16 images").wait_for(timeout=60_000)
        time.sleep(1)
        shot(page, "live")
