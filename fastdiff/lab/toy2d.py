"""Diffusion on points of the plane, for the app's 2D lab: three two-class datasets, a small MLP
denoiser `(x_t, t, class) -> eps` with the U-Net's interface (config.num_classes, null_class, so the
project's loss, guidance and samplers run on it unchanged) and a training loop that streams its loss.
Small enough to train in seconds on a CPU.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from ..config import DiffusionConfig
from ..diffusion.losses import diffusion_loss
from ..diffusion.schedule import NoiseSchedule

DATASETS = ("two moons", "rings", "gaussians")
TOY_DIFFUSION = DiffusionConfig(num_timesteps=200, beta_end=0.05)  # linear; alpha_bar falls to 0.006


def make_points(name: str, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 2) points scaled to about [-1, 1] and their (n,) class (0 or 1); ValueError for an unknown name."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")
    labels = torch.randint(2, (n,), generator=generator)
    angle = torch.rand(n, generator=generator) * math.pi
    if name == "two moons":  # scikit-learn's make_moons: upper arc and a lower one shifted right
        x = torch.where(labels == 0, torch.cos(angle), 1 - torch.cos(angle))
        y = torch.where(labels == 0, torch.sin(angle), 0.5 - torch.sin(angle))
        points, noise = torch.stack([x - 0.5, y - 0.25], 1) / 1.5, 0.04
    elif name == "rings":
        radius = torch.where(labels == 0, 0.4, 0.9)
        points, noise = torch.stack([torch.cos(2 * angle), torch.sin(2 * angle)], 1) * radius[:, None], 0.04
    else:  # four Gaussians on a square, two per class along its diagonals
        corner = labels * 2 + torch.randint(2, (n,), generator=generator)
        centers = torch.tensor([[-0.6, -0.6], [0.6, 0.6], [-0.6, 0.6], [0.6, -0.6]])
        points, noise = centers[corner], 0.12
    return points + noise * torch.randn(n, 2, generator=generator), labels


@dataclass(frozen=True)
class ToyConfig:
    num_classes: int = 2
    hidden: int = 128  # width of the MLP
    time_features: int = 16  # sinusoidal features of t
    prediction: str = "eps"  # what the network predicts (the samplers read it, as from a U-Net's config)
    guidance_embedding: bool = False  # guidance is two passes, conditional and unconditional


class ToyDenoiser(nn.Module):
    """An MLP from (x_t, t, class) to the noise eps; class num_classes is the null class of guidance."""

    def __init__(self, config: ToyConfig = ToyConfig()):
        super().__init__()
        self.config = config
        self.null_class = config.num_classes
        self.class_embedding = nn.Embedding(config.num_classes + 1, config.time_features)
        width = config.hidden
        self.net = nn.Sequential(
            nn.Linear(2 + 2 * config.time_features, width),
            nn.SiLU(),
            nn.Linear(width, width),
            nn.SiLU(),
            nn.Linear(width, width),
            nn.SiLU(),
            nn.Linear(width, 2),
        )

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """x_t: (B, 2), t: (B,) timesteps, labels: (B,) classes or None -> eps (B, 2)."""
        half = self.config.time_features // 2
        frequencies = torch.exp(torch.arange(half, device=x_t.device) * (-math.log(1000.0) / half))
        angles = t.float()[:, None] * frequencies[None]
        if labels is None:
            labels = torch.full_like(t, self.null_class)
        features = [x_t, torch.sin(angles), torch.cos(angles), self.class_embedding(labels)]
        return self.net(torch.cat(features, 1))


_threads_lock = threading.Lock()
_threads_users = [0, 0]  # runs inside one_thread, torch's thread count before the first


@contextlib.contextmanager
def one_thread():
    """Run torch on one thread while any toy model trains or samples: its small matrix products take
    less time than waking a second thread for them (several times less on a busy 2-core machine). The
    count is process-wide, so it is restored when the last such run ends."""
    with _threads_lock:
        if _threads_users[0] == 0:
            _threads_users[1] = torch.get_num_threads()
            torch.set_num_threads(1)
        _threads_users[0] += 1
    try:
        yield
    finally:
        with _threads_lock:
            _threads_users[0] -= 1
            if _threads_users[0] == 0:
                torch.set_num_threads(_threads_users[1])


@dataclass
class TrainState:
    step: int
    seconds: float
    loss: float  # mean loss since the last state


def train(
    model: ToyDenoiser,
    schedule: NoiseSchedule,
    points: torch.Tensor,
    labels: torch.Tensor,
    num_steps: int,
    batch_size: int = 256,
    seed: int = 0,
    report_every: int = 50,
    clock: Callable[[], float] = time.perf_counter,
) -> Iterator[TrainState]:
    """Adam on the plain denoising loss (label dropout 0.1 for guidance); yields a TrainState every
    report_every steps and after the last."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    start, total, count = clock(), 0.0, 0
    model.train()
    for step in range(1, num_steps + 1):
        batch = torch.randint(len(points), (batch_size,), generator=generator)
        loss = diffusion_loss(model, schedule, points[batch], labels[batch], generator, label_dropout=0.1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total, count = total + loss.item(), count + 1
        if step % report_every == 0 or step == num_steps:
            yield TrainState(step, clock() - start, total / count)
            total, count = 0.0, 0
    model.eval()
