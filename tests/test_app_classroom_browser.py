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
