"""What several test modules build: tiny random checkpoints, a small easy dataset and zip files of
PNG images. Imported by conftest.py (fixtures) and by the test modules themselves."""

import dataclasses
import io
import math
import time
import zipfile

import numpy as np
import torch
from gradio_client import Client
from PIL import Image
from torch import nn

from fastdiff.app import ui as app
from fastdiff.app.backend import Backend
from fastdiff.app.generate import make_request
from fastdiff.bench.app_memory import free_port
from fastdiff.config import CascadeConfig, DiffusionConfig, ModelConfig, TrainConfig
from fastdiff.data import ImageDataset
from fastdiff.diffusion.rng import ImageRNG
from fastdiff.diffusion.samplers import SAMPLERS
from fastdiff.diffusion.sampling import final_images, make_plan, sample
from fastdiff.diffusion.schedule import NoiseSchedule
from fastdiff.nn.cascade import build_model
from fastdiff.nn.checkpoint import save_model
from fastdiff.train.trainer import Trainer

CLASSES = "abcdefghij"  # the tiny checkpoint's classes
# n_feat 12: each GroupNorm group holds 3 channels, so the time and class embeddings that a block adds before
# its second norm reach the output. With 8 (or 16), every group is one channel, the norm removes them, and in
# fp32 the output ignores t and the class (bf16 rounding let a little through).
TINY = dict(n_feat=12, class_names=tuple(CLASSES))


def make_tiny_checkpoint(folder, num_timesteps: int = 50, cascade: bool = False, **model_options):
    """A tiny model (a LowDiff cascade of 8, 16 and 32 with cascade=True) with random weights saved as
    a checkpoint folder."""
    torch.manual_seed(0)
    cascade_config = CascadeConfig() if cascade else None
    model = build_model(ModelConfig(**{**TINY, **model_options}), cascade_config)
    for p in model.parameters():  # also the layers that start at zero, so that the output varies
        torch.nn.init.normal_(p, std=0.05)
    save_model(
        folder,
        model.state_dict(),
        model.config,
        DiffusionConfig(num_timesteps=num_timesteps),
        cascade_config=cascade_config,
    )
    return folder


def color_dataset(n=64, num_classes=4) -> ImageDataset:
    """Each class a flat colour plus a little noise: easy to learn in a few dozen steps."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % num_classes
    colors = torch.tensor([[230, 30, 30], [30, 230, 30], [30, 30, 230], [230, 230, 30]])[labels]
    images = colors[:, :, None, None] + torch.randint(-20, 20, (n, 3, 32, 32), generator=generator)
    return ImageDataset(images.clamp(0, 255).to(torch.uint8), labels, ("red", "green", "blue", "yellow")[:num_classes])


def png(seed: int) -> bytes:
    """A 32x32 PNG of random pixels."""
    return png_bytes(Image.fromarray(np.random.default_rng(seed).integers(0, 256, (32, 32, 3), dtype=np.uint8)))


def flat_png(color: tuple[int, int, int]) -> bytes:
    """A 32x32 PNG of one colour."""
    return png_bytes(Image.new("RGB", (32, 32), color))


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_zip(path, files: dict[str, bytes]):
    """A .zip holding files (name -> content) at path."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def wait_until(condition, timeout: float, what: str, poll: float = 0.01) -> None:
    """Poll condition() until it is true; fail the test naming `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(poll)


# -- the app through gradio_client ------------------------------------------------------------------

GOOD = dict(
    checkpoint="cifar10-base",
    class_name="c",
    sampler="DDIM",
    steps=10,
    guidance=2.0,
    attention=False,
    stages="1",
    seed=0,
    num_images=4,
    eta=0.0,
)


def served_client(backend, root):
    """Serve the app of backend on a free port and yield a gradio_client Client for it (downloads in
    root/downloads); the server closes when the generator does."""
    demo = app.build_app(backend)
    port = free_port()
    app.launch(demo, port=port, prevent_thread_lock=True, quiet=True)
    yield Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=str(root / "downloads"))
    demo.close()


def generate(client, **changes):
    return client.predict(*{**GOOD, **changes}.values(), api_name="/generate")


# -- the app in a browser ---------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"


def serve(backend: Backend):
    """A browser page on the app serving backend, once the page is ready."""
    demo = app.build_app(backend)
    port = free_port()
    app.launch(demo, port=port, prevent_thread_lock=True, quiet=True)
    for page in browser_page(f"http://127.0.0.1:{port}/"):
        page.get_by_role("button", name="Generate", exact=True).wait_for()
        yield page
    demo.close()


def browser_page(url: str):
    """A headless Chromium page opened at url; the browser closes when the generator does."""
    from playwright import sync_api

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(url)
        yield page
        browser.close()


def set_steps(page, steps: int) -> None:
    field = page.locator("#steps input[type=number]")
    field.fill(str(steps))
    field.press("Enter")


# -- generation requests, samplers, trainers -------------------------------------------------------


def request(store, **changes):
    settings = dict(class_name="b", sampler_label="DDIM", steps=10, guidance=2.0, eta=0.0, seed=5, num_images=3)
    return make_request(store.load("cifar10-base"), **{**settings, **changes})


# For data x0 ~ N(mu, s^2) the optimal noise predictor is known in closed form:
# x_t ~ N(a mu, a^2 s^2 + sigma^2) with a = sqrt(alpha_bar), sigma = sqrt(1 - alpha_bar), and
# E[eps | x_t] = sigma (x_t - a mu) / (a^2 s^2 + sigma^2). A sampler driven by it must return N(mu, s^2).
MU, STD = 0.3, 0.5


def gaussian_denoiser(schedule):
    def denoiser(x_t, t):
        alpha_bar = schedule.alpha_bar[t].view(-1, 1, 1, 1)
        a, sigma = alpha_bar.sqrt(), (1 - alpha_bar).sqrt()
        return sigma * (x_t - a * MU) / (a**2 * STD**2 + sigma**2)

    return denoiser


def sample_gaussian(sampler, steps, eta=0.0, scale=1.0):
    """Run a sampler on the exact denoiser (times scale), from the exact marginal of x_T."""
    schedule = NoiseSchedule(DiffusionConfig())
    exact = gaussian_denoiser(schedule)
    rng = ImageRNG(range(4000))
    alpha_bar = schedule.alpha_bar[-1].item()
    x_T = math.sqrt(alpha_bar) * MU + math.sqrt(alpha_bar * STD**2 + 1 - alpha_bar) * rng.randn(1, 2, 2)
    return final_images(
        SAMPLERS[sampler](lambda x, t: scale * exact(x, t), schedule, x_T, steps, eta=eta, rng=rng, clip_x0=False)
    )


def run(model, seeds, sampler="ddim", steps=5, eta=0.0, guidance=2.0):
    schedule = NoiseSchedule(DiffusionConfig(num_timesteps=50))
    labels = torch.tensor([3] * len(seeds))
    return sample(model, schedule, labels, seeds, make_plan(model, schedule, sampler, steps, guidance, eta))


def make_trainer(tmp_path, name="run", **overrides):
    config = TrainConfig(
        **{"epochs": 3, "batch_size": 16, "lr": 1e-3, "precision": "fp32", "preview_every": 0} | overrides
    )
    return Trainer(color_dataset(), tmp_path / name, config, ModelConfig(n_feat=8))


class Reparameterized(nn.Module):
    """An eps network whose output is converted to another parameterization: the same function."""

    def __init__(self, eps_model, prediction: str, schedule):
        super().__init__()
        self.eps_model, self.schedule = eps_model, schedule
        self.config = dataclasses.replace(eps_model.config, prediction=prediction)

    @property
    def null_class(self) -> int:
        return self.eps_model.null_class

    def forward(self, x_t, t, class_labels=None):
        eps = self.eps_model(x_t, t, class_labels)
        return self.schedule.prediction_target(eps, self.schedule.predict_x0(x_t, t, eps), t, self.config.prediction)
