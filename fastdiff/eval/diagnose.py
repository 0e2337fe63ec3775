"""Issue 15's diagnosis: why deterministic samplers turn some seeds of a checkpoint into saturated
high-frequency noise textures, and which sampler avoids them (`python -m fastdiff eval diagnose`,
assets/diagnosis.md and assets/diagnosis.png).

Three measurements: (1) the network's eps calibration per t on noised test images (ratio of the
predicted to the true noise's norm, MSE), and at the first step on the training marginal vs the pure
noise sampling starts from (T = 500 linear betas leave alpha_bar_{T-1} ~ 0.0064: training never sees
pure noise, Lin et al. 2024); (2) the high-frequency energy of x0 and x_t per step of DPM-Solver++ 20
for the seeds that end as textures vs the others, and how x_T's statistics predict them; (3) texture
share, class accuracy and KID of samplers on the same seeds and labels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from ..data import dataset_label, load_dataset, to_model_range
from ..device import autocast
from ..diffusion.guidance import guided_denoiser
from ..diffusion.rng import ImageRNG
from ..diffusion.samplers import ddim, ddpm, dpm_solver_pp, dpm_solver_pp_2m, dpm_solver_pp_sde
from ..diffusion.schedule import NoiseSchedule
from ..nn.checkpoint import load_model
from ..report import machine, markdown_table
from .evaluate import QualityJudge, score
from .metrics import high_frequency_energy

CALIBRATION_POINTS = (0, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 0.98, 1)  # t / (T - 1)
CALIBRATION_IMAGES = 500


@dataclass
class Variant:
    label: str
    sampler: Callable  # a generator of diffusion/samplers.py
    steps: int  # model evaluations per image
    options: dict = field(default_factory=dict)  # the sampler's own keyword arguments


TRACKED = Variant("DPM-Solver++ 20 (2M)", dpm_solver_pp, 20)
VARIANTS = [  # cheapest first, so a short run still reports the new samplers
    TRACKED,
    Variant("DPM-Solver++ SDE 20", dpm_solver_pp_sde, 20),
    Variant("DPM-Solver++ 20, first step stochastic", dpm_solver_pp_2m, 20, {"noisy_steps": 1}),
    Variant("DPM-Solver++ 20, first 5 steps stochastic", dpm_solver_pp_2m, 20, {"noisy_steps": 5}),
    Variant("DDIM-50, eta=1", ddim, 50, {"eta": 1.0}),
    Variant("DDIM-50, eta=0.5", ddim, 50, {"eta": 0.5}),
    Variant("DDIM-50, eta=0", ddim, 50, {"eta": 0.0}),
    Variant("DDPM-100", ddpm, 100),
]


@dataclass
class Run:
    images: torch.Tensor  # (n, C, H, W) final samples
    x_T: torch.Tensor  # (n, C, H, W) starting noise
    x0_energy: torch.Tensor  # (steps, n) high-frequency energy of the x0 prediction per step
    x_t_energy: torch.Tensor  # (steps, n) and of x_t
    timesteps: list[int]


def run_variant(model, schedule, labels, seeds, variant: Variant, guidance, precision, batch_size=100) -> Run:
    """Sample as sampling.sample_steps does (x_T drawn first from the per-image rngs, then the sampler
    with the same rngs), recording every step's high-frequency energy."""
    parts = []
    for start in range(0, len(seeds), batch_size):
        rng = ImageRNG(seeds[start : start + batch_size], labels.device)
        x_T = rng.randn(model.config.image_channels, model.config.image_size, model.config.image_size)
        denoiser = guided_denoiser(model, labels[start : start + batch_size], guidance, precision)
        x0_energy, x_t_energy, timesteps = [], [], []
        for step in variant.sampler(denoiser, schedule, x_T, variant.steps, rng=rng, **variant.options):
            x0_energy.append(high_frequency_energy(step.x0).cpu())
            x_t_energy.append(high_frequency_energy(step.x_t).cpu())
            timesteps.append(step.t)
        parts.append((step.x_t.cpu(), x_T.cpu(), torch.stack(x0_energy), torch.stack(x_t_energy)))
    images, x_T, x0_energy, x_t_energy = zip(*parts)
    return Run(torch.cat(images), torch.cat(x_T), torch.cat(x0_energy, 1), torch.cat(x_t_energy, 1), timesteps)


@torch.no_grad()
def eps_calibration(model, schedule: NoiseSchedule, images, labels, precision: str) -> list[dict]:
    """Per t on noised real images: mean ||eps_hat|| / ||eps||, the MSE of eps_hat and the RMS error of
    the x0 it implies (sqrt(MSE (1 - alpha_bar) / alpha_bar))."""
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(0)
    rows = []
    for t in sorted({round(point * (schedule.num_timesteps - 1)) for point in CALIBRATION_POINTS}):
        eps = torch.randn(images.shape, generator=generator).to(device)
        t_batch = torch.full((len(images),), t, device=device)
        x_t = schedule.q_sample(images, t_batch, eps)
        with autocast(device, precision):
            output = model(x_t, t_batch, labels).float()
        eps_hat, _ = schedule.eps_and_x0(output, x_t, t_batch, model.config.prediction)
        mse = (eps_hat - eps).square().mean().item()
        alpha_bar = schedule.alpha_bar[t].item()
        rows.append(
            {
                "t": t,
                "alpha_bar": alpha_bar,
                "norm_ratio": (eps_hat.flatten(1).norm(dim=1) / eps.flatten(1).norm(dim=1)).mean().item(),
                "mse": mse,
                "x0_rms_error": (mse * (1 - alpha_bar) / alpha_bar) ** 0.5,
            }
        )
    return rows


@torch.no_grad()
def first_step(model, schedule: NoiseSchedule, images, labels, precision: str) -> list[list[str]]:
    """At t = T-1: the network on the training marginal x_t = sqrt(alpha_bar) x0 + sqrt(1 - alpha_bar) eps
    vs on the pure noise sampling starts from: ||eps_hat|| / ||x_t||, the x0 it implies (clamped as the
    samplers do) and that x0's high-frequency energy and low-frequency (4x4 mean) spread."""
    device = next(model.parameters()).device
    t = schedule.num_timesteps - 1
    t_batch = torch.full((len(images),), t, device=device)
    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(1)).to(device)
    rows = []
    for name, x_t in (("training marginal", schedule.q_sample(images, t_batch, noise)), ("pure noise", noise)):
        with autocast(device, precision):
            output = model(x_t, t_batch, labels).float()
        eps_hat, x0 = schedule.eps_and_x0(output, x_t, t_batch, model.config.prediction)
        x0 = x0.clamp(-1, 1)
        ratio = (eps_hat.flatten(1).norm(dim=1) / x_t.flatten(1).norm(dim=1)).mean().item()
        rows.append(
            [
                name,
                f"{x_t.std().item():.4f}",
                f"{ratio:.4f}",
                f"{high_frequency_energy(x0).mean().item():.3f}",
                f"{F.avg_pool2d(x0, 4).std().item():.3f}",
                f"{(x0.abs() > 0.99).float().mean().item():.1%}",
            ]
        )
    return rows


def correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    return torch.corrcoef(torch.stack([a.double(), b.double()]))[0, 1].item()


def tracking_rows(run: Run, threshold: float) -> list[list[str]]:
    """Per step of the tracked run: mean high-frequency energy of x0 and x_t for the seeds that end as
    textures and the others, and how well each step's x0 energy predicts the final one (correlation)."""
    failing = run.x_t_energy[-1] > threshold
    final = run.x_t_energy[-1]
    rows = []
    for k, t in enumerate(run.timesteps):
        x0, x_t = run.x0_energy[k], run.x_t_energy[k]
        rows.append(
            [
                k,
                t,
                f"{x0[failing].mean().item():.3f} / {x0[~failing].mean().item():.3f}",
                f"{x_t[failing].mean().item():.3f} / {x_t[~failing].mean().item():.3f}",
                f"{correlation(x0, final):.2f}",
            ]
        )
    return rows


def start_rows(run: Run, threshold: float) -> list[list[str]]:
    """How statistics of x_T relate to the final texture energy: correlation, and the mean for textured
    seeds vs the others."""
    failing = run.x_t_energy[-1] > threshold
    final = run.x_t_energy[-1]
    statistics = {
        "std of x_T": run.x_T.flatten(1).std(dim=1),
        "high-frequency energy of x_T": high_frequency_energy(run.x_T),
        "low-frequency spread of x_T (std of 4x4 means)": F.avg_pool2d(run.x_T, 4).flatten(1).std(dim=1),
        "x0 energy after the first step": run.x0_energy[0],
    }
    return [
        [name, f"{correlation(value, final):.2f}", f"{value[failing].mean():.4f} / {value[~failing].mean():.4f}"]
        for name, value in statistics.items()
    ]


def variant_row(variant: Variant, run: Run, metrics: dict, tracked_failing: torch.Tensor, threshold: float) -> list:
    failing = run.x_t_energy[-1] > threshold
    shared = (failing & tracked_failing).sum().item()
    return [
        variant.label,
        variant.steps,
        f"{100 * metrics['texture_share']:.1f}%",
        f"{shared} of {tracked_failing.sum().item()}",
        f"{100 * metrics['class_accuracy']:.1f}%",
        f"{metrics['kid']:.4f} ± {metrics['kid_std']:.4f}",
    ]


def figure(calibration: list[dict], run: Run, threshold: float) -> Figure:
    """eps norm ratio and x0 RMS error vs t; x0 and x_t high-frequency energy over the tracked run's
    steps, textured seeds vs the others."""
    failing = run.x_t_energy[-1] > threshold
    fig = Figure(figsize=(13, 3.6), layout="constrained")
    ratio, x0_panel, x_t_panel = fig.subplots(1, 3)
    ts = [row["t"] for row in calibration]
    ratio.plot(ts, [row["norm_ratio"] for row in calibration], "o-", label="||eps_hat|| / ||eps||")
    ratio.axhline(1, color="gray", lw=0.8)
    ratio.set(xlabel="t", title="eps calibration on noised test images")
    error = ratio.twinx()
    error.semilogy(ts, [row["x0_rms_error"] for row in calibration], "s--", color="C3", label="x0 RMS error")
    ratio.legend(loc="upper left", fontsize=8)
    error.legend(loc="lower right", fontsize=8)
    steps = range(len(run.timesteps))
    for panel, energy, name in ((x0_panel, run.x0_energy, "x0 prediction"), (x_t_panel, run.x_t_energy, "x_t")):
        for group, colour, label in ((failing, "C3", "textured seeds"), (~failing, "C0", "other seeds")):
            if group.any():
                panel.plot(steps, energy[:, group], color=colour, alpha=0.08, lw=0.7)
                panel.plot(steps, energy[:, group].mean(1), color=colour, lw=2.2, label=label)
        panel.axhline(threshold, color="gray", ls=":", label="texture threshold")
        panel.set(xlabel=f"step ({TRACKED.label})", ylabel="high-frequency energy", title=name)
        panel.legend(fontsize=8)
    return fig


def diagnose(
    checkpoint: Path,
    classifier_dir: Path,
    data: str,
    n: int = 200,
    guidance: float = 2.0,
    seed: int = 0,
    assets: Path = Path("assets"),
    device: torch.device = torch.device("cpu"),
    variants: list[Variant] = VARIANTS,
    progress: Callable[[str], None] = print,
) -> str:
    """Write assets/diagnosis.md and diagnosis.png; the markdown is rewritten after every sampler so a
    long run shows its rows as they come. Returns the markdown."""
    model, diffusion, _ = load_model(checkpoint, device)
    model.eval()
    schedule = NoiseSchedule(diffusion, device)
    judge = QualityJudge(classifier_dir, data, device)
    precision, threshold = judge.precision, judge.texture_threshold
    test = load_dataset(data, "test")
    chosen = torch.randperm(len(test), generator=torch.Generator().manual_seed(seed))[:CALIBRATION_IMAGES]
    real = to_model_range(test.images[chosen]).to(device)
    real_labels = test.labels[chosen].to(device)
    command = (
        f"`python -m fastdiff eval diagnose --checkpoint {checkpoint} --data {data} --n {n} "
        f"--guidance {guidance} --seed {seed}`"
    )
    where = f"{dataset_label(data)}; {machine()}"
    calibration = eps_calibration(model, schedule, real, real_labels, precision)
    start = first_step(model, schedule, real, real_labels, precision)
    progress("eps calibration done")
    labels = (torch.arange(n) % model.config.num_classes).to(device)
    seeds = list(range(seed, seed + n))
    tracked = run_variant(model, schedule, labels, seeds, TRACKED, guidance, precision)
    tracked_failing = tracked.x_t_energy[-1] > threshold
    (assets / "diagnosis.png").parent.mkdir(parents=True, exist_ok=True)
    figure(calibration, tracked, threshold).savefig(assets / "diagnosis.png", dpi=110)
    sections = [
        f"# Diagnosis: noise-texture samples ({checkpoint.name})\n\nEvery table: {command}, on {where}. "
        f"A sample is a noise texture when its mean |vertical pixel difference| (high-frequency energy) "
        f"exceeds {threshold:.3f}, the test split's 99th percentile. Plots: diagnosis.png.",
        f"## eps calibration per t\n\n{len(real)} test images, noised with seeded eps, their own labels, "
        "no guidance.\n\n"
        + markdown_table(
            ["t", "alpha_bar", "mean ||eps_hat|| / ||eps||", "eps MSE", "x0 RMS error"],
            [
                [
                    r["t"],
                    f"{r['alpha_bar']:.4f}",
                    f"{r['norm_ratio']:.4f}",
                    f"{r['mse']:.5f}",
                    f"{r['x0_rms_error']:.3f}",
                ]
                for r in calibration
            ],
        ),
        f"## The first step (t = {schedule.num_timesteps - 1}): training inputs vs pure noise\n\n"
        "x0 is the clamped prediction the samplers use; saturated = share of x0 pixels with |x0| > 0.99.\n\n"
        + markdown_table(
            ["input", "std of x_t", "||eps_hat|| / ||x_t||", "x0 high-freq. energy", "x0 4x4-mean spread", "saturated"],
            start,
        ),
        f"## Where the texture appears ({TRACKED.label}, w={guidance}, {n} seeds, "
        f"{int(tracked_failing.sum())} textured)\n\nEnergy: textured seeds / the others.\n\n"
        + markdown_table(
            ["step", "t", "x0 energy", "x_t energy", "corr(x0 energy, final energy)"],
            tracking_rows(tracked, threshold),
        )
        + "\n\n"
        + markdown_table(["statistic", "corr. with final energy", "textured / others"], start_rows(tracked, threshold)),
    ]
    headers = ["sampler", "NFE", "noise textures", f"textured seeds shared with {TRACKED.label}", "class acc.", "KID"]
    rows = []
    for variant in variants:
        run = (
            tracked if variant is TRACKED else run_variant(model, schedule, labels, seeds, variant, guidance, precision)
        )
        metrics = score(run.images, labels.cpu(), judge.classifier, judge.test_features, threshold, precision)
        rows.append(variant_row(variant, run, metrics, tracked_failing, threshold))
        progress(" | ".join(str(cell) for cell in rows[-1]))
        table = (
            f"## Samplers on the same {n} seeds and labels (w={guidance})\n\nThe evaluator's class accuracy "
            "and KID against the test split.\n\n" + markdown_table(headers, rows)
        )
        text = "\n\n".join(sections + [table]) + "\n"
        (assets / "diagnosis.md").write_text(text)
    return text
