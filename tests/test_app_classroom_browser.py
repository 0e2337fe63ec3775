"""The replay of a finished run in a real browser (Chromium through Playwright): after Generate, moving
the step slider changes the picture without sampling again."""

import shutil
import time

import pytest
from helpers import CHROMIUM, make_tiny_checkpoint, serve, set_steps

from fastdiff.app.backend import Backend

pytestmark = pytest.mark.slow
pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
if not shutil.which(CHROMIUM):
    pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    root = tmp_path_factory.mktemp("classroom-browser")
    make_tiny_checkpoint(root / "checkpoints" / "cifar10-base")
    yield from serve(Backend(root / "checkpoints", root / "runs", root / "shared.zip", root))


def view_source(page) -> str | None:
    return page.locator("#scrub-view img").first.get_attribute("src")


def wait_for_new_view(page, old: str | None, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if page.locator("#scrub-view img").count() and (source := view_source(page)) not in (None, old):
            return source
        page.wait_for_timeout(100)
    raise AssertionError("the step view did not change")


def test_the_step_slider_replays_the_run(page):
    page.get_by_role("radio", name="DDIM").first.check()
    set_steps(page, 6)
    page.locator("#generate").click()
    page.locator("#status").get_by_text("done:").wait_for(timeout=60_000)
    end = wait_for_new_view(page, None)
    assert "step 6/6" in page.locator("#scrub-caption").inner_text()
    field = page.locator("#scrub-step input[type=number]")
    field.fill("0")
    field.press("Enter")
    wait_for_new_view(page, end)
    page.locator("#scrub-caption").get_by_text("step 1/6").wait_for(timeout=10_000)


def distinct_sources(page, selector: str, seconds: float) -> set[str]:
    """The different pictures an element showed while watched for `seconds`."""
    seen, deadline = set(), time.monotonic() + seconds
    while time.monotonic() < deadline:
        if page.locator(selector).count() and (source := page.locator(selector).first.get_attribute("src")):
            seen.add(source)
        page.wait_for_timeout(50)
    return seen


def test_the_sweep_shows_one_picture_per_value_and_they_differ(page):
    page.get_by_role("tab", name="Sweep").click()
    page.locator("#sweep").click()
    page.locator("#sweep-status").get_by_text("5/5").wait_for(timeout=60_000)
    pictures = page.locator("#sweep-gallery img")
    assert pictures.count() == 5
    assert len({pictures.nth(i).get_attribute("src") for i in range(5)}) > 1  # w = 0 and w = 4 differ


def test_the_2d_lab_trains_then_animates_the_points(page):
    page.get_by_role("tab", name="2D lab").click()
    seconds = page.get_by_label("training time (s)").first
    seconds.fill("2")
    seconds.press("Enter")
    page.locator("#lab-train").click()
    page.locator("#lab-status").get_by_text("done:").wait_for(timeout=60_000)
    assert page.locator("#lab-training img").count()
    page.locator("#lab-sample").click()
    assert len(distinct_sources(page, "#lab-paths img", 6.0)) >= 2, "the points did not move"
