"""The adapter between the Gradio page and FastDiff: one method per UI action, taking the UI controls
in the order the page shows them. It checks the input, turns every expected failure into a one-line
gr.Error (shown in the page, never a traceback) and returns pictures, text and file paths.

Files are read only from checkpoint folders found under checkpoints/ and runs/, and written only to
runs/ and the app's temp folder.
"""
from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import gradio as gr

from .app_generate import make_request, save_outputs, stream, whole_number
from .app_models import ModelStore
from .checkpoint import CheckpointError, read_config
from .data import DataError
from .device import resolve_device, resolve_precision
from .images import grid, to_uint8


@contextlib.contextmanager
def user_errors():
    """Show expected failures (bad settings, missing or damaged files) as a message in the page."""
    try:
        yield
    except (ValueError, CheckpointError, DataError) as e:
        raise gr.Error(str(e), print_exception=False) from e


class Backend:
    def __init__(self, checkpoints_dir: Path, runs_dir: Path, device: str = "auto"):
        self.device = resolve_device(device)
        self.precision = resolve_precision("auto", self.device)
        self.store = ModelStore(checkpoints_dir, runs_dir, self.device)
        self.temp_dir = Path(tempfile.mkdtemp(prefix="fastdiff-app-"))

    # -- checkpoints ---------------------------------------------------------------------------------

    def checkpoint_choices(self) -> gr.Dropdown:
        """The checkpoint list as it is now (runs finished since start-up included)."""
        return gr.Dropdown(choices=self.store.names(), value=self.store.default_name())

    def class_choices(self, checkpoint: str | None) -> gr.Dropdown:
        """The classes of a checkpoint plus "random"; only "random" when it is unknown."""
        try:
            model_config = read_config(self.store.folder(checkpoint))[0]
        except (ValueError, CheckpointError):
            return gr.Dropdown(choices=["random"], value="random")
        names = list(model_config.class_names if model_config.num_classes else ()) + ["random"]
        return gr.Dropdown(choices=names, value=names[0])

    def availability(self) -> str:
        return self.store.availability()

    # -- Generate ------------------------------------------------------------------------------------

    def generate(self, checkpoint, class_name, sampler, steps, guidance, attention, stages, seed,
                 num_images, eta):
        """Yield (live frame, status, final grid, download paths, first image) while sampling."""
        with user_errors():
            name = self.store.resolve(checkpoint, bool(attention), whole_number(stages, "cascade stages"))
            loaded = self.store.load(name)
            request = make_request(loaded, class_name, sampler, steps, guidance, eta, seed, num_images)
        animation = []
        runner = stream(loaded, request, self.precision, animation)
        yield None, f"sampling with `{name}`...", None, None, gr.skip()
        while True:
            try:
                progress = next(runner)
            except StopIteration as stop:
                images = stop.value
                break
            status = (f"step {progress.index + 1}/{progress.num_steps} · {progress.seconds:.1f} s · "
                      f"{progress.images_per_sec:.2f} images/s · `{name}`, {request.sampler}")
            yield progress.picture, status, gr.skip(), gr.skip(), gr.skip()
        paths, note = save_outputs(images, animation, Path(tempfile.mkdtemp(dir=self.temp_dir)))
        yield (progress.picture, f"done: {status}" + (f"\n\n{note}" if note else ""), grid(images, scale=4),
               [str(p) for p in paths], to_uint8(images[:1])[0])
