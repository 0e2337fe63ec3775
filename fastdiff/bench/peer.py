"""`bench sample`'s peer: the same guided 16-image DDIM grid with diffusers' UNet2DModel and
DDIMScheduler, when diffusers (an optional, benchmark-only dependency) is installed."""

from __future__ import annotations

import time

import torch

from ..config import DiffusionConfig
from ..device import autocast, resolve_device, resolve_precision
from ..report import markdown_table
from .timing import GRID_SIZE, GUIDANCE, forward_gflops, isolated

PEERS = {  # diffusers UNet2DModel configurations: about our parameter count, and the original DDPM U-Net
    "diffusers-small": dict(
        block_out_channels=(32, 64, 72),
        layers_per_block=1,
        norm_num_groups=8,
        down_block_types=("DownBlock2D",) * 3,
        up_block_types=("UpBlock2D",) * 3,
    ),
    "diffusers-ddpm": dict(
        block_out_channels=(128, 256, 256, 256),
        layers_per_block=2,
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
    ),
}


def time_peer_sampling(kind: str, steps: int) -> dict:
    """The same guided 16-image DDIM grid with diffusers' UNet2DModel and DDIMScheduler (random weights,
    same schedule, batch, precision and memory layout)."""
    from diffusers import DDIMScheduler, UNet2DModel

    device = resolve_device()
    precision = resolve_precision("auto", device)
    model = UNet2DModel(sample_size=32, in_channels=3, out_channels=3, num_class_embeds=11, **PEERS[kind])
    model = model.to(device, memory_format=torch.channels_last).eval()
    config = DiffusionConfig()
    scheduler = DDIMScheduler(
        num_train_timesteps=config.num_timesteps,
        beta_start=config.beta_start,
        beta_end=config.beta_end,
        beta_schedule="linear",
        timestep_spacing="trailing",
    )
    labels = torch.cat([torch.arange(GRID_SIZE) % 10, torch.full((GRID_SIZE,), 10)]).to(device)

    def run(num_steps: int) -> float:
        scheduler.set_timesteps(num_steps)
        x = torch.randn(GRID_SIZE, 3, 32, 32, generator=torch.Generator().manual_seed(0)).to(device)
        start = time.perf_counter()
        for t in scheduler.timesteps:
            batch = torch.cat([x, x]).contiguous(memory_format=torch.channels_last)
            with torch.inference_mode(), autocast(device, precision):
                eps_cond, eps_uncond = model(batch, t, class_labels=labels).sample.float().chunk(2)
            x = scheduler.step(eps_cond + GUIDANCE * (eps_cond - eps_uncond), t, x).prev_sample
        x.sum().item()
        return time.perf_counter() - start

    run(2)
    return {
        "seconds": run(steps),
        "parameters_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "gflops": forward_gflops(model),
    }


def bench_peer(ours_ddim50: float, ours_gflops: float) -> str:
    """diffusers side by side, when it is installed."""
    try:
        import diffusers  # noqa: F401
    except ImportError:
        return "Peer comparison skipped: diffusers is not installed (pip install diffusers)."
    rows = []
    for kind in PEERS:
        result = isolated(time_peer_sampling, kind, 50)
        rows.append(
            [
                f"diffusers UNet2DModel + DDIMScheduler ({result['parameters_m']:.2f}M)",
                "DDIM-50",
                f"{result['gflops']:.2f}",
                f"{result['seconds']:.2f}",
                f"{GRID_SIZE / result['seconds']:.3g}",
                f"{result['seconds'] / ours_ddim50:.2f}x",
                f"{result['peak_rss_mb']:.0f} MB",
            ]
        )
        print(rows[-1], flush=True)
    return (
        f"The peer, same run, same schedule, steps, batch and precision (random weights). FastDiff's "
        f"forward pass is {ours_gflops:.2f} GFLOP per image.\n\n"
        + markdown_table(
            [
                "peer",
                "sampler",
                "GFLOP per image (forward)",
                f"s per {GRID_SIZE}-image guided grid",
                "images/s",
                "FastDiff DDIM-50 is faster by",
                "peak RSS",
            ],
            rows,
        )
    )
