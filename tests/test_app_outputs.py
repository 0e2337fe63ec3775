"""Generate shows the final grid as soon as sampling ends, and makes the GIF and MP4 only when asked,
from the run kept for replay; the bench row that times both."""

import numpy as np
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from helpers import make_tiny_checkpoint
from PIL import Image

from fastdiff.app import ui as app
from fastdiff.app.backend import Backend
from fastdiff.bench.app_memory import free_port
from fastdiff.bench.runner import time_app_outputs
from fastdiff.images import save_animation, save_animations

SETTINGS = ("cifar10-base", "a", "DDIM", 6, 2.0, False, "1", 0, 4, 0.0)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    root = tmp_path_factory.mktemp("app")
    make_tiny_checkpoint(root / "checkpoints" / "cifar10-base")
    demo = app.build_app(Backend(root / "checkpoints", root / "runs", root / "data.zip", root))
    port = free_port()
    app.launch(demo, port=port, prevent_thread_lock=True, quiet=True)
    yield Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=str(root / "downloads"))
    demo.close()


def names(paths) -> list[str]:
    return [p.rsplit("/", 1)[1] for p in paths]


def test_the_grid_ends_the_run_and_the_animations_are_made_when_asked(client):
    with pytest.raises(AppError, match="Press Generate first"):
        client.predict(api_name="/animations")
    job = client.submit(*SETTINGS, api_name="/generate")
    _, status, final, downloads = job.result()
    assert status.startswith("done: step 6/6") and names(downloads) == ["samples.png"]
    files, note = client.predict(api_name="/animations")  # the same session: its kept run
    assert note == "" and names(files) == ["denoising.gif", "denoising.mp4"]
    gif = Image.open(files[0])
    side = 2 * (2 * 34 + 2)  # a 2x2 grid twice enlarged
    assert gif.n_frames == 6 and gif.size == (2 * side + 8, side)  # x_t | x0 after each of the 6 steps
    gif.seek(5)
    last = np.asarray(gif.convert("RGB"))[:, :side]
    assert np.abs(last.astype(int) - np.asarray(Image.open(final).resize(last.shape[1::-1], 0))).mean() < 8


def test_the_last_frame_and_the_grid_are_shown_as_files(tmp_path):
    """Gradio writes a repeated array again over the cached copy it may still be sending (the page or
    the client then reads a short file); a file it copies into its cache once."""
    make_tiny_checkpoint(tmp_path / "checkpoints" / "cifar10-base")
    backend = Backend(tmp_path / "checkpoints", tmp_path / "runs", tmp_path / "data.zip", tmp_path)
    frames, shown = [], []
    for live, status, final, *_ in backend.generate(*SETTINGS):
        if isinstance(live, np.ndarray):
            frames.append(live)
        elif status.startswith("done"):  # read while the run still holds its folder
            shown.append((live, final, np.asarray(Image.open(live)), np.asarray(Image.open(final))))
    ((live, final, picture, grid_picture),) = shown
    assert live.endswith(".bmp") and final.endswith(".png")
    assert np.array_equal(picture, frames[-1]) and grid_picture.shape == (4 * (2 * 34 + 2),) * 2 + (3,)


def test_animations_share_one_palette_and_keep_the_frame_size(tmp_path):
    frames = [np.random.default_rng(i).integers(0, 256, (70, 142, 3), dtype=np.uint8) for i in range(8)]
    paths, note = save_animations(frames, tmp_path)
    assert note == "" and names(map(str, paths)) == ["denoising.gif", "denoising.mp4"]
    gif = Image.open(paths[0])
    first_duration = gif.info["duration"]
    gif.seek(7)
    assert gif.size == (142, 70) and gif.n_frames == 8 and gif.info["duration"] == 3 * first_duration  # held
    save_animation(frames[:1], tmp_path / "one.gif")
    assert Image.open(tmp_path / "one.gif").n_frames == 1


def test_bench_times_click_to_grid_and_click_to_animation(tmp_path):
    make_tiny_checkpoint(tmp_path / "base")
    result = time_app_outputs(tmp_path / "base", 3)
    assert 0 < result["seconds"] < result["animation_seconds"] and result["nfe"] == "3" and result["trained"]
