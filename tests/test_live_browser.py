"""The Live tab in a real browser (Debian's Chromium through Playwright): dragging the guidance slider
redraws the picture while it moves, and once it stops the picture is the one for its last value."""

import io
import shutil
import time
import urllib.request

import numpy as np
import pytest
from helpers import CHROMIUM, make_tiny_checkpoint, serve
from PIL import Image

from fastdiff.app.backend import Backend
from fastdiff.app.live import Live

pytestmark = pytest.mark.slow
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
if not shutil.which(CHROMIUM):
    pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("live")
    make_tiny_checkpoint(root / "checkpoints" / "cifar10-base")
    options = dict(guidance_embedding=True, distilled_steps=2, prediction="v")
    make_tiny_checkpoint(root / "checkpoints" / "cifar10-distilled", **options)
    backend = Backend(root / "checkpoints", root / "runs", root / "shared.zip", root)
    for page in serve(backend):
        yield page, backend


def shown_pixels(page) -> np.ndarray:
    source = page.locator("#live-picture img").get_attribute("src")
    with urllib.request.urlopen(source) as response:
        return np.asarray(Image.open(io.BytesIO(response.read())))


def settle(page, seconds: float = 1.5) -> str:
    """The caption once it has not changed for `seconds` (the last update has come back)."""
    caption, since = None, time.monotonic()
    while time.monotonic() - since < seconds:
        now = page.locator("#live-caption").inner_text()
        if now != caption:
            caption, since = now, time.monotonic()
        time.sleep(0.1)
    return caption


def test_dragging_the_guidance_slider_redraws_and_ends_on_its_last_value(served):
    page, backend = served
    page.get_by_role("tab", name="Live").click()
    sync_api.expect(page.locator("#live-caption")).to_contain_text("ms ·", timeout=30_000)
    before = shown_pixels(page)
    track = page.locator("#live-w input[type=range]")
    box = track.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + 0.5 * box["width"], y)  # w = 2, the slider's first value
    page.mouse.down()
    captions = set()
    for step in range(1, 11):  # towards w = 4, about 10 moves a second
        page.mouse.move(box["x"] + (0.5 + 0.05 * step) * box["width"], y)
        captions.add(page.locator("#live-caption").inner_text())
        time.sleep(0.1)
    page.mouse.up()
    caption = settle(page)
    assert len(captions) >= 2, "the picture did not change while the slider moved"
    w = float(page.locator("#live-w input[type=number]").input_value())
    assert w > 2 and f"w = {w:g}" in caption
    after = shown_pixels(page)
    assert not np.array_equal(before, after)
    expected, _, _ = Live(backend).update("a", w, 0, 1, 0, "4")
    assert np.array_equal(after, np.asarray(Image.open(expected)))
