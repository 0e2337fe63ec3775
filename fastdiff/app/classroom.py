"""The adapter for the classroom views (replaying a run, the forward process as a strip, sweeping one
setting): one method per UI action, beside Backend, whose model store and precision it shares. Expected
failures become a one-line message in the page, as in Backend."""

from __future__ import annotations

import gradio as gr

from ..diffusion.trajectory import Trajectory
from .backend import NO_PICTURE, Backend, user_errors
from .forward_strip import forward_strip
from .scrub import check_position, step_caption, step_view, strip
from .sweep import DEFAULT_VALUES, make_points, run_points


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
        for picture, label in run_points(loaded, points, self.backend.precision):
            gallery.append((picture, label))
            yield gallery, f"{len(gallery)}/{len(points)} · {setting} swept on seed {int(seed)}"
