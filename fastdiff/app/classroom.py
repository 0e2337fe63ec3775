"""The adapter for the classroom views (replaying a run, the forward process as a strip, sweeping one
setting): one method per UI action, beside Backend, whose model store and precision it shares. Expected
failures become a one-line message in the page, as in Backend."""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

import gradio as gr

from ..diffusion.replay import check_position, step_caption, step_view, strip
from ..diffusion.trajectory import Trajectory
from ..images import save_image
from .backend import NO_PICTURE, Backend, user_errors
from .compare import VARIANTS, configurations, number
from .forward_strip import forward_strip
from .generate import SAMPLER_LABELS, serving_checkpoint, whole_number
from .lab2d import animation, field_figure, train_lab, training_figure
from .quality_cost import quality_cost_figure, recorded_points
from .sweep import DEFAULT_VALUES, make_points, run_points

PLOT_INTERVAL = 1.0  # seconds between loss plots while the 2D lab trains
SWEEP_TABLE = "assets/quality.md"  # the quality sweep's table, relative to the app folder


class Classroom:
    def __init__(self, backend: Backend):
        self.backend = backend

    # -- replaying the latest run --------------------------------------------------------------------

    def scrub_ready(self, trajectory: Trajectory | None):
        """After a run: (position slider at the end, image slider at 1, step view, caption, strip of image 1)."""
        if trajectory is None or not trajectory.steps:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        view, text = self.scrub(trajectory, 100, 1)
        return (
            100,
            1,
            view,
            text,
            strip(trajectory, 0),
        )

    def scrub(self, trajectory: Trajectory | None, percent, image):
        """(x_t | x0 | eps picture, caption) of one image at the kept step nearest to `percent` through the run."""
        with user_errors():
            position, image = check_position(trajectory, percent, image)
        return step_view(trajectory, position, image), step_caption(trajectory, trajectory.steps[position])

    def scrub_strip(self, trajectory: Trajectory | None, image):
        """The strip (rows x_t, x0, eps over the run) of one image."""
        with user_errors():
            _, image = check_position(trajectory, 0, image)
        return strip(trajectory, image)

    # -- the forward process -------------------------------------------------------------------------

    def forward(self, picture, checkpoint):
        """(strip of x_t at log-SNR-spaced t, caption) for the chosen checkpoint's schedule."""
        if picture is None:
            return None, NO_PICTURE
        with user_errors():
            return forward_strip(picture, self.backend.store.schedule(checkpoint))

    # -- sweeping one setting ------------------------------------------------------------------------

    def sweep_values(self, setting: str) -> str:
        """The default values of a setting, for its textbox."""
        return DEFAULT_VALUES.get(setting, "")

    def sweep(self, checkpoint, class_name, sampler, steps, guidance, seed, setting, values):
        """Yield (gallery of captioned images, status) as each value's image is made."""
        with user_errors():
            loaded = self.backend.store.load(checkpoint)
            base = dict(
                class_name=class_name, sampler_label=sampler, steps=steps, guidance=guidance, eta=0.0, seed=seed
            )
            points = make_points(loaded, setting, values, base)
        gallery = []
        # Each update sends the whole gallery again: as files, which Gradio copies into its cache once
        # (an array it writes again, over the copy it may still be sending); then the folder goes.
        with tempfile.TemporaryDirectory(dir=self.backend.temp_dir) as folder:
            for picture, label in run_points(loaded, points, self.backend.precision):
                path = Path(folder) / f"{len(gallery)}.png"
                save_image(picture, path)
                gallery.append((str(path), label))
                yield gallery, f"{len(gallery)}/{len(points)} · {setting} swept on seed {int(seed)}"

    # -- quality against cost ------------------------------------------------------------------------

    def quality_cost(self, checkpoint, table):
        """(plot of the recorded quality against cost with the table's configurations marked, note on
        rows that could not be marked)."""
        store, marked, problems = self.backend.store, [], []
        try:
            rows = configurations(table)
        except ValueError as e:
            rows, problems = [], [str(e)]
        for index, (sampler, steps, guidance, variant, stages) in enumerate(rows, 1):
            try:
                if sampler not in SAMPLER_LABELS:
                    raise ValueError(f"unknown sampler {sampler!r}")
                num_stages = whole_number(number(stages, "stages"), "stages")
                steps = whole_number(number(steps, "steps"), "steps")
                name = serving_checkpoint(store, checkpoint, sampler, VARIANTS[variant], num_stages, steps)
                marked.append((name, (SAMPLER_LABELS[sampler], steps, number(guidance, "guidance"), num_stages)))
            except ValueError as e:
                problems.append(f"configuration {index} not marked: {e}")
        records = {name: store.evaluation(name) for name in store.names()}
        points = recorded_points(records, self.backend.app_root / SWEEP_TABLE)
        return quality_cost_figure(points, marked), "\n\n".join(problems)

    # -- the 2D lab ----------------------------------------------------------------------------------

    def lab_train(self, dataset, seconds):
        """Yield (loss and data plot, status, the session's new Lab) while training."""
        with user_errors():
            run = train_lab(dataset, seconds)
        drawn = -math.inf
        for lab, status in run:
            if time.perf_counter() - drawn >= PLOT_INTERVAL:  # drawing a plot stops training meanwhile
                drawn = time.perf_counter()
                yield training_figure(lab), status, lab
        yield training_figure(lab), f"done: {status}", lab

    def lab_sample(self, lab, steps, choice, guidance):
        """Yield the frames of the three samplers' animation."""
        with user_errors():
            frames = animation(lab, steps, choice, guidance)
        yield from frames

    def lab_field(self, lab, t, choice, guidance):
        with user_errors():
            return field_figure(lab, t, choice, guidance)
