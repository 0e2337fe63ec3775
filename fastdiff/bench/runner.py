"""Speed measurements anyone can re-run: `python -m fastdiff bench sample|train|all` measures on the
current device and writes markdown tables (with the machine they were measured on) and a plot to
assets/ (bench-sample.md on the CPU, bench-sample-<gpu name>.md on a GPU). Each configuration runs in
a fresh process so that its peak memory is its own."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import ModelConfig, TrainConfig
from ..data import ImageDataset
from ..device import AUTOCAST_DTYPES, resolve_device, resolve_precision, results_suffix
from ..diffusion.frames import watch
from ..diffusion.replay import animation_frames
from ..diffusion.samplers import DEFAULT_STEPS
from ..diffusion.sampling import final_images, make_plan, sample_steps
from ..diffusion.trajectory import Trajectory
from ..eval.cost import effective_nfe, format_nfe, measure_step_latency, stage_nfe
from ..eval.records import read_eval, recorded_quality
from ..images import grid, save_animations, save_image
from ..nn.baseline import BaselineUNet
from ..nn.checkpoint import CASCADE, DISTILLED, DISTILLED_1, DISTILLED_2, read_config
from ..report import machine, markdown_table
from ..train.trainer import Trainer
from .classroom import bench_classroom
from .profile import bench_profile
from .timing import (
    GRID_SIZE,
    GUIDANCE,
    WARMUP,
    build,
    forward_gflops,
    grid_setup,
    isolated,
    matmul_peak_gflops,
    time_run,
)


def time_sampling(kind: str, checkpoint: Path | None, sampler: str, steps: int, timed_steps: int | None = None) -> dict:
    """Seconds for one guided 16-image grid; with timed_steps, the mean step time over that many steps
    is extrapolated to all steps (for configurations too slow to run whole). kind "compiled": the base
    network under torch.compile, whose compilation happens in the warm-up."""
    model, schedule, labels, seeds, precision, trained = grid_setup(kind, checkpoint)
    if kind == "compiled":
        model = torch.compile(model)

    def run(sampler: str, steps: int | None):
        return sample_steps(
            model, schedule, labels, seeds, make_plan(model, schedule, sampler, steps, GUIDANCE), precision
        )

    warmup = (sampler, steps) if model.config.distilled_steps else WARMUP
    result = time_run(run, sampler, steps, timed_steps, warmup=warmup)
    return result | {"trained": trained, "nfe": str(steps), "effective_nfe": steps}


STREAMING_REPEATS = 3


def time_app_streaming(checkpoint: Path | None, steps: int) -> dict:
    """The DDIM grid watched as the app streams it (diffusion/frames.py: live frames converted for the
    page, the animation's kept), and the same run drained without watching, alternated STREAMING_REPEATS
    times in one process so that the cost of streaming is not lost in the noise between processes; the
    fastest of each."""
    model, schedule, labels, seeds, precision, trained = grid_setup("base", checkpoint)
    size = model.config.image_size

    def run(num_steps: int):
        return sample_steps(
            model, schedule, labels, seeds, make_plan(model, schedule, "ddim", num_steps, GUIDANCE), precision
        )

    list(watch(run(2), size, 1))
    streamed, plain = [], []
    for _ in range(STREAMING_REPEATS):
        start, frames, first_frame = time.perf_counter(), 0, None
        for _ in watch(run(steps), size, 1):
            first_frame = first_frame or time.perf_counter() - start
            frames += 1
        streamed.append(time.perf_counter() - start)
        start = time.perf_counter()
        final_images(run(steps))
        plain.append(time.perf_counter() - start)
    return {
        "seconds": min(streamed),
        "plain_seconds": min(plain),
        "first_frame_s": first_frame,
        "extrapolated_from": None,
        "frames": frames,
        "trained": trained,
        "nfe": str(steps),
        "effective_nfe": steps,
    }


def time_app_outputs(checkpoint: Path | None, steps: int) -> dict:
    """What the app's Generate button waits for: the DDIM grid watched and kept for replay as the app
    streams it until the final grid's PNG is written (click to grid), then what the GIF and MP4 button
    adds when pressed at once (click to animation); the fastest of STREAMING_REPEATS runs."""
    model, schedule, labels, seeds, precision, trained = grid_setup("base", checkpoint)
    size = model.config.image_size

    def watched(num_steps: int, trajectory: Trajectory) -> torch.Tensor:
        """The final images of a run streamed as the app does."""
        plan = make_plan(model, schedule, "ddim", num_steps, GUIDANCE)
        *_, last = watch(trajectory.record(sample_steps(model, schedule, labels, seeds, plan, precision)), size, 1)
        return last.step.x_t

    watched(2, Trajectory(schedule))
    to_grid, to_animation = [], []
    for _ in range(STREAMING_REPEATS):
        with tempfile.TemporaryDirectory() as folder:
            start, trajectory = time.perf_counter(), Trajectory(schedule)
            images = watched(steps, trajectory)
            save_image(grid(images), Path(folder) / "samples.png")
            to_grid.append(time.perf_counter() - start)
            save_animations(animation_frames(trajectory), Path(folder))
            to_animation.append(time.perf_counter() - start)
    return {
        "seconds": min(to_grid),
        "animation_seconds": min(to_animation),
        "first_frame_s": None,  # the streaming row has it
        "extrapolated_from": None,
        "trained": trained,
        "nfe": str(steps),
        "effective_nfe": steps,
    }


def time_cascade_sampling(checkpoint: Path, sampler: str, num_stages: int) -> dict:
    """time_sampling for a LowDiff cascade with its default stages, and its effective NFE from the step
    latency measured at the grid's batch size (appendix B)."""
    model, schedule, labels, seeds, precision, trained = grid_setup("cascade", checkpoint)

    def run(sampler: str, steps: int | None):
        return sample_steps(
            model,
            schedule,
            labels,
            seeds,
            make_plan(model, schedule, sampler, steps, GUIDANCE, stages=num_stages),
            precision,
        )

    result = time_run(run, sampler, None)
    nfe = stage_nfe(make_plan(model, schedule, sampler, None, GUIDANCE, stages=num_stages).stages)
    latency = measure_step_latency(model, batch_size=2 * GRID_SIZE)
    return result | {"trained": trained, "nfe": format_nfe(nfe), "effective_nfe": effective_nfe(nfe, latency)}


def time_training(kind: str, precision: str, batch_size: int = 128, timed_steps: int = 4) -> dict:
    """Images/s of real Trainer steps (loss, backward, Adam, EMA) on synthetic data."""
    model = BaselineUNet() if kind == "baseline" else None
    config = ModelConfig(attention=kind == "attention")
    return {"images_per_s": trainer_speed(config, model, precision, batch_size, timed_steps, resolve_device())}


def trainer_speed(
    model_config: ModelConfig,
    model: torch.nn.Module | None,
    precision: str,
    batch_size: int,
    timed_steps: int,
    device: torch.device,
) -> float:
    """Images/s of timed_steps Trainer steps on random images (after two untimed ones); model: a
    prebuilt network instead of the FastDiff U-Net of model_config."""
    images = torch.randint(0, 256, (batch_size * (timed_steps + 2), 3, 32, 32), dtype=torch.uint8)
    dataset = ImageDataset(images, torch.arange(len(images)) % 10, tuple(str(i) for i in range(10)))
    trainer = Trainer(
        dataset,
        Path("/nonexistent"),
        TrainConfig(batch_size=batch_size, precision=precision),
        model_config,
        device=device,
        model=model,
    )
    batches = list(trainer.dataset.batches(batch_size, torch.Generator().manual_seed(0)))  # on the device
    for x0, labels in batches[:2]:
        trainer.train_step(x0, labels).item()  # warm-up
    start = time.perf_counter()
    for x0, labels in batches[2:]:
        loss = trainer.train_step(x0, labels)
    loss.item()  # waits for the device to finish the queued steps
    return batch_size * timed_steps / (time.perf_counter() - start)


SAMPLE_CONFIGS = [  # label, network, checkpoint, sampler, steps, timed steps (None: all)
    ("Baseline DDPM U-Net (35.7M)", "baseline", None, "ddpm", 500, 5),
    ("FastDiff", "base", "checkpoints/cifar10-base", "ddpm", 500, None),
    ("FastDiff", "base", "checkpoints/cifar10-base", "ddim", 100, None),
    ("FastDiff", "base", "checkpoints/cifar10-base", "ddim", 50, None),
    ("FastDiff + torch.compile", "compiled", "checkpoints/cifar10-base", "ddim", 50, None),
    ("FastDiff + attention", "attention", "checkpoints/cifar10-attn", "ddim", 100, None),
    ("FastDiff", "base", "checkpoints/cifar10-base", "dpm++", 20, None),
    ("FastDiff", "base", "checkpoints/cifar10-base", "dpm++", 10, None),
]
CASCADE_CONFIGS = [(stages, sampler) for stages in (2, 3) for sampler in ("ddim", "dpm++")]  # default stages


@dataclass
class SampleJob:
    """One row of the sampling table."""

    label: str  # the model, as the table names it
    sampler: str  # the sampler column, e.g. "DDIM-50"
    checkpoint: str | None  # whose eval.json gives the quality columns
    configuration: tuple[str, int, float, int]  # (sampler, steps, guidance, stages), as eval.json records it
    timing: Callable[..., dict]  # the timing function, run in a fresh process
    args: tuple  # its arguments
    kind: str | None = None  # the network, for the FLOP/s share (None: not computed)


def sample_jobs(
    cascade: Path = Path("checkpoints") / CASCADE,
    students: tuple[Path, ...] = tuple(Path("checkpoints") / name for name in (DISTILLED, DISTILLED_2, DISTILLED_1)),
) -> list[SampleJob]:
    """The rows of the sampling table; the cascade's and each distilled student's rows when their
    checkpoints exist."""
    jobs = []
    for label, kind, checkpoint, sampler, steps, timed in SAMPLE_CONFIGS:
        jobs.append(
            SampleJob(
                label,
                f"{sampler.upper()}-{steps}",
                checkpoint,
                (sampler, steps, GUIDANCE, 1),
                time_sampling,
                (kind, checkpoint, sampler, steps, timed),
                kind,
            )
        )
    jobs.append(
        SampleJob(
            "FastDiff, through the app's streaming",
            "DDIM-50",
            "checkpoints/cifar10-base",
            ("ddim", 50, GUIDANCE, 1),
            time_app_streaming,
            ("checkpoints/cifar10-base", 50),
            "base",
        )
    )
    jobs.append(
        SampleJob(
            "FastDiff, the app's Generate: click to grid",
            "DDIM-50",
            "checkpoints/cifar10-base",
            ("ddim", 50, GUIDANCE, 1),
            time_app_outputs,
            ("checkpoints/cifar10-base", 50),
            "base",
        )
    )
    if (cascade / "model.safetensors").exists():
        for stages, sampler in CASCADE_CONFIGS:
            jobs.append(
                SampleJob(
                    f"FastDiff cascade, {stages} stages",
                    f"{sampler.upper()}, default stages",
                    str(cascade),
                    (sampler, DEFAULT_STEPS[sampler], GUIDANCE, stages),
                    time_cascade_sampling,
                    (cascade, sampler, stages),
                )
            )
    for distilled in students:
        if not (distilled / "model.safetensors").exists():
            continue
        steps = read_config(distilled)[0].distilled_steps  # the one grid the student samples
        jobs.append(
            SampleJob(
                "FastDiff distilled, guidance in one pass",
                f"DDIM-{steps}",
                str(distilled),
                ("ddim", steps, GUIDANCE, 1),
                time_sampling,
                ("base", distilled, "ddim", steps, None),
            )
        )
    return jobs


def quality_columns(checkpoint: str | None, configuration: tuple[str, int, float, int]) -> tuple[str, str]:
    """Class accuracy and KID from a checkpoint's eval.json, labelled with the configuration they were
    measured at when it is not this row's."""
    recorded = recorded_quality(read_eval(checkpoint) if checkpoint else None, configuration)
    if recorded is None:
        return "not measured", "not measured"
    numbers, elsewhere = recorded
    note = f" (at {elsewhere})" if elsewhere else ""
    return f"{100 * numbers['class_accuracy']:.1f}%{note}", f"{numbers['kid']:.4f}{note}"


def amp_matmul_peak() -> tuple[str, float]:
    """The autocast precision on this device, and the GFLOP/s a large matmul reaches in it."""
    device = resolve_device()
    amp = resolve_precision("auto", device)
    return amp, matmul_peak_gflops(device, AUTOCAST_DTYPES.get(amp, torch.float32))


def bench_sample(assets: Path) -> str:
    amp, peak = amp_matmul_peak()
    gflops = {kind: forward_gflops(build(kind)[0]) for kind in ("base", "attention", "baseline")}
    gflops["compiled"] = gflops["base"]
    rows, results = [], []
    for job in sample_jobs():
        label, sampler = job.label, job.sampler
        result = isolated(job.timing, *job.args)
        utilisation = (
            f"{100 * 2 * GRID_SIZE * int(result['nfe']) * gflops[job.kind] / result['seconds'] / peak:.0f}%"
            if job.kind
            else ""
        )
        results.append((f"{label} {sampler}", result))
        baseline_seconds = results[0][1]["seconds"]
        accuracy, kid = (
            quality_columns(job.checkpoint, job.configuration) if result["trained"] else ("untrained weights", "")
        )
        extrapolated = result["extrapolated_from"]
        note = f" (mean of {extrapolated} steps x {result['nfe']})" if extrapolated else ""
        if label.endswith("torch.compile"):
            note += f" (after {result['warmup_s']:.0f} s of compilation)"
        if "frames" in result:
            overhead = 100 * (result["seconds"] / result["plain_seconds"] - 1)
            note += (
                f" ({result['frames']} frames sent; {overhead:+.1f}% vs {result['plain_seconds']:.2f} s drained "
                f"without streaming, fastest of {STREAMING_REPEATS} alternating runs each)"
            )
        if "animation_seconds" in result:
            note += f" (GIF and MP4 asked for at once: written {result['animation_seconds']:.2f} s from the click)"
        rows.append(
            [
                label,
                sampler,
                result["nfe"],
                result["effective_nfe"],
                f"{result['seconds']:.2f}{note}",
                f"{GRID_SIZE / result['seconds']:.3g}",
                f"{baseline_seconds / result['seconds']:.1f}x",
                f"{1000 * result['first_frame_s']:.0f} ms" if result["first_frame_s"] is not None else "",
                f"{result['peak_rss_mb']:.0f} MB",
                utilisation,
                accuracy,
                kid,
            ]
        )
        print(rows[-1], flush=True)
    table = markdown_table(
        [
            "model",
            "sampler",
            "NFE",
            "effective NFE",
            f"s per {GRID_SIZE}-image guided grid",
            "images/s",
            "speed vs baseline",
            "first frame",
            "peak RSS",
            f"share of {peak:.0f} GFLOP/s {amp} matmul",
            "class acc.",
            "KID",
        ],
        rows,
    )
    _plot_sampling(results, assets / f"bench-sample{results_suffix(resolve_device())}.png")
    from .app_memory import app_peak_memory
    from .peer import bench_peer  # it builds on this module

    ours = dict(results)["FastDiff DDIM-50"]["seconds"]
    memory = app_peak_memory(Path("checkpoints"))
    app_line = (
        f"The app (`python app.py`, a fresh process) after a guided {GRID_SIZE}-image DDIM-50 grid from each "
        f"of {', '.join(memory['generated'])}, all loaded at once: peak resident memory "
        + (f"{memory['peak_rss_mb']:.0f} MB." if memory["peak_rss_mb"] else "not measured (no /proc here).")
    )
    return table + "\n\n" + bench_peer(ours, gflops["base"]) + "\n\n" + app_line


def _plot_sampling(results: list[tuple[str, dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(7, 3.5))
    labels = [label for label, _ in results]
    axis.barh(labels, [r["seconds"] for _, r in results], color="tab:blue")
    axis.set_xscale("log")
    axis.set_xlabel(f"seconds per {GRID_SIZE}-image guided grid (log scale)")
    axis.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def bench_train(assets: Path) -> str:
    amp, peak = amp_matmul_peak()
    rows, speeds = [], {}
    for label, kind in (
        ("FastDiff", "base"),
        ("FastDiff + attention", "attention"),
        ("Baseline DDPM U-Net", "baseline"),
    ):
        model, _, _ = build(kind)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        gflops = forward_gflops(model)
        timed = 2 if kind == "baseline" else 6
        fp32 = isolated(time_training, kind, "fp32", 128, timed)
        mixed = isolated(time_training, kind, amp, 128, timed)
        speeds[kind] = (fp32["images_per_s"], mixed["images_per_s"])
        utilisation = 3 * gflops * mixed["images_per_s"] / peak  # backward ~ 2x forward
        rows.append(
            [
                label,
                f"{params:.2f}M",
                f"{gflops:.2f}",
                f"{fp32['images_per_s']:.1f}",
                f"{mixed['images_per_s']:.1f}",
                f"{mixed['images_per_s'] / fp32['images_per_s']:.2f}x",
                f"{fp32['peak_rss_mb']:.0f} / {mixed['peak_rss_mb']:.0f} MB",
                f"{100 * utilisation:.0f}%",
            ]
        )
        print(rows[-1], flush=True)
    table = markdown_table(
        [
            "model",
            "parameters",
            "GFLOP per image (forward)",
            "fp32 images/s",
            f"{amp} images/s",
            "AMP speed-up",
            "peak RSS fp32 / AMP",
            f"AMP utilisation of {peak:.0f} GFLOP/s {amp} matmul",
        ],
        rows,
    )
    ratio = speeds["base"][1] / speeds["baseline"][0]
    return table + (
        f"\n\nFastDiff with AMP trains {ratio:.1f}x as many images/s as the baseline in fp32 "
        f"({speeds['base'][1] / speeds['baseline'][1]:.1f}x the baseline with AMP)."
    )


def run(what: str, assets: Path = Path("assets")) -> None:
    assets.mkdir(parents=True, exist_ok=True)
    header = f"Measured with `python -m fastdiff bench {{}}` on: {machine()}.\n\n"
    for name, bench in (
        ("train", bench_train),
        ("sample", bench_sample),
        ("profile", bench_profile),
        ("classroom", bench_classroom),
    ):
        if what in (name, "all"):
            text = f"# Benchmark: {name}\n\n" + header.format(name) + bench(assets) + "\n"
            (assets / f"bench-{name}{results_suffix(resolve_device())}.md").write_text(text)
            print(text)
