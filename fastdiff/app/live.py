"""The Live tab's adapter: the fastest shipped distilled student redrawn for every move of a control
(class, guidance, seed, and a slider between two seeds that moves the starting noise along the great
circle between their noises). One update is one short sampling run; the page asks for the newest value
only once the previous update has come back, so no stale request waits in the queue."""

from __future__ import annotations

import math
import time
import uuid
from pathlib import Path

from ..config import ModelConfig
from ..diffusion.sampling import check_seed, final_images, noise_between
from ..images import grid, save_image
from ..nn.checkpoint import read_config
from .backend import Backend, user_errors
from .generate import DISTILLED_SAMPLER, make_request, whole_number

LIVE_IMAGES = ("1", "4", "16")  # the image-count choices: one picture, a 2x2 or a 4x4 grid
LIVE_SEEDS = 999  # the seed slider's range starts at 0
PICTURE_SIDE = 256  # pixels of the shown grid's side, about (a 32x32 image at 8x)


def fraction_between(value) -> float:
    """The between-seeds slider's value as a float in [0, 1]; ValueError naming what was sent."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"between the two seeds must be a number from 0 to 1, got {value!r}") from None
    if not 0 <= number <= 1:  # also refuses NaN
        raise ValueError(f"between the two seeds must be a number from 0 to 1, got {value}")
    return number


class Live:
    def __init__(self, backend: Backend):
        self.backend = backend
        self.folder = backend.temp_dir / "live"

    def choices(self) -> tuple[list[str], float]:
        """(class choices, largest guidance weight) of the student the tab draws with."""
        try:
            config = read_config(self.backend.store.folder(self.backend.store.fastest_student()))[0]
        except ValueError:
            config = ModelConfig(num_classes=0)
        return [*(config.class_names if config.num_classes else ()), "random"], config.guidance_range[1]

    def update(self, class_name, guidance, seed, other_seed, between, num_images, shown: str | None = None):
        """(picture file, caption, the file again for the page's state) for the current controls. shown:
        the file of the previous update, removed now that Gradio has copied it into its cache."""
        with user_errors():
            name = self.backend.store.fastest_student()
            loaded = self.backend.store.load(name)
            if str(num_images) not in LIVE_IMAGES:
                raise ValueError(f"images must be one of {', '.join(LIVE_IMAGES)}, got {num_images!r}")
            count, steps = int(num_images), loaded.model.config.distilled_steps
            request = make_request(loaded, class_name, DISTILLED_SAMPLER, steps, guidance, 0, seed, count)
            other = whole_number(other_seed, "second seed")
            check_seed(other, count)
            between = fraction_between(between)
        start = time.perf_counter()
        config = loaded.model.config
        shape = (config.image_channels, config.image_size, config.image_size)
        noise = noise_between(request.seeds, list(range(other, other + count)), between, *shape)
        job = self.backend.sampling.submit(loaded, request, self.backend.precision, noise)
        try:
            images = final_images(job.results())
        finally:
            self.backend.sampling.cancel(job)  # a closed page's update leaves the line
        seconds = time.perf_counter() - start
        self.folder.mkdir(exist_ok=True)
        path = self.folder / f"{uuid.uuid4().hex}.png"
        columns = math.ceil(math.sqrt(count))
        save_image(grid(images, pad=0, scale=max(1, PICTURE_SIDE // (columns * config.image_size))), path)
        if shown and Path(shown).parent == self.folder:
            Path(shown).unlink(missing_ok=True)
        caption = (
            f"{1000 * seconds:.0f} ms · {count} image{'s' if count > 1 else ''} ({class_name or 'random'}) · `{name}`, "
            f"{steps} step{'s' if steps > 1 else ''} · w = {request.plan.guidance:g} · "
            f"seed {request.seeds[0]} → {other} at {between:.2f}"
        )
        return str(path), caption, str(path)
