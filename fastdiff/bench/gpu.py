"""`python -m fastdiff bench gpu`: one short check of what only a GPU can show. It times the guided
16-image DDIM-50 grid on the plain path and the CUDA-graph path, Trainer steps per precision and batch
size (FastDiff and the baseline), a short `train` run through Trainer.run (whose data path and
per-step events the step timing leaves out), and measures how far a seed's images on this device are
from the CPU's. Writes gpu-check<gpu name>.md and .json to --assets; the fastest precision it finds is
the one to enter in device.AUTO_PRECISION["cuda"]."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch

from ..config import DiffusionConfig, ModelConfig, TrainConfig
from ..data import ImageDataset, load_cifar10_archive
from ..device import resolve_precision, results_suffix
from ..diffusion.sampling import make_plan, sample, sample_steps
from ..diffusion.schedule import NoiseSchedule
from ..nn.baseline import BaselineUNet
from ..nn.unet import UNet
from ..report import machine, markdown_table
from ..train.trainer import LOG_NAME, Trainer
from .runner import trainer_speed
from .timing import GRID_SIZE, GUIDANCE, build, time_runs

CIFAR10_ARCHIVE = Path("data/cifar-10-python.tar.gz")


def time_grids(model: UNet, schedule: NoiseSchedule, precisions: list[str], steps: int, rounds: int) -> list[dict]:
    """Seconds per guided grid, each precision on the plain and the graph path, timed in turns."""
    device = next(model.parameters()).device
    labels, seeds = torch.arange(GRID_SIZE, device=device) % model.config.num_classes, list(range(GRID_SIZE))
    configurations = [(precision, graph) for precision in precisions for graph in (False, True)]

    def runner(precision: str, graph: bool):
        return lambda sampler, num_steps: sample_steps(
            model, schedule, labels, seeds, make_plan(model, schedule, sampler, num_steps, GUIDANCE), precision, graph
        )

    results = time_runs([runner(*c) for c in configurations], "ddim", steps, rounds=rounds)
    return [
        {"precision": p, "cuda_graph": g, "seconds": r["seconds"], "first_frame_s": r["first_frame_s"]}
        for (p, g), r in zip(configurations, results)
    ]


def graph_difference(model: UNet, schedule: NoiseSchedule, steps: int) -> float:
    """Largest difference between the fp32 grid on the graph path and on the plain one (0 off CUDA)."""
    device = next(model.parameters()).device
    labels, plan = (
        torch.arange(GRID_SIZE, device=device) % model.config.num_classes,
        make_plan(model, schedule, "ddim", steps),
    )
    seeds = list(range(GRID_SIZE))
    plain = sample(model, schedule, labels, seeds, plan)
    graphed = sample_steps(model, schedule, labels, seeds, plan, cuda_graph=True)
    return (list(graphed)[-1].x_t - plain).abs().max().item()


def same_seed_difference(model: UNet, schedule: NoiseSchedule, steps: int) -> dict:
    """Mean absolute difference, in [-1, 1] pixel units, between the fp32 grid of seeds 0..15 here and
    on the CPU, for the deterministic DDIM and the stochastic DDPM."""
    device = next(model.parameters()).device
    cpu_model = build_copy_on_cpu(model)
    labels = torch.arange(GRID_SIZE) % model.config.num_classes
    differences = {}
    for sampler in ("ddim", "ddpm"):
        plan = make_plan(model, schedule, sampler, steps, GUIDANCE)
        here = sample(model, schedule, labels.to(device), list(range(GRID_SIZE)), plan).cpu()
        there = sample(cpu_model, schedule, labels, list(range(GRID_SIZE)), plan)
        differences[f"{sampler}-{steps}"] = (here - there).abs().mean().item()
    return differences


def build_copy_on_cpu(model: UNet) -> UNet:
    copy = type(model)(model.config)
    copy.load_state_dict({k: v.cpu() for k, v in model.state_dict().items()})
    return copy.eval()


def time_training(
    model_config: ModelConfig, precisions: list[str], batch_sizes: list[int], timed_steps: int, baseline: bool, device
) -> list[dict]:
    """Images/s of Trainer steps for FastDiff (and the baseline U-Net) per precision and batch size."""
    rows = []
    for label in ("FastDiff", "Baseline DDPM U-Net") if baseline else ("FastDiff",):
        for batch_size in batch_sizes:
            for precision in precisions:
                model = BaselineUNet() if label != "FastDiff" else None
                speed = trainer_speed(model_config, model, precision, batch_size, timed_steps, device)
                rows.append({"model": label, "batch_size": batch_size, "precision": precision, "images_per_s": speed})
                print(rows[-1], flush=True)
    return rows


def training_run(model_config: ModelConfig, precision: str, batch_size: int, images: int, device: torch.device) -> dict:
    """Two epochs of Trainer.run on the first `images` CIFAR-10 training images (random ones without
    the archive); images/s of the second epoch as its log records it."""
    if CIFAR10_ARCHIVE.exists():
        full, source = load_cifar10_archive(CIFAR10_ARCHIVE), "CIFAR-10"
        dataset = ImageDataset(full.images[:images], full.labels[:images], full.class_names)
    else:
        generator = torch.Generator().manual_seed(0)
        pixels = torch.randint(0, 256, (images, 3, 32, 32), dtype=torch.uint8, generator=generator)
        dataset, source = ImageDataset(pixels, torch.arange(images) % 10, tuple("0123456789")), "random images"
    config = TrainConfig(epochs=2, batch_size=batch_size, precision=precision, preview_every=0)
    with tempfile.TemporaryDirectory() as folder:
        trainer = Trainer(dataset, Path(folder), config, model_config, device=device)
        trainer.run()
        record = json.loads((Path(folder) / LOG_NAME).read_text().splitlines()[-1])
    return {"data": source, "images": images, "batch_size": batch_size, "precision": trainer.precision} | {
        "images_per_s": record["images_per_sec"]
    }


def check(
    assets: Path,
    device: torch.device,
    model_config: ModelConfig = ModelConfig(),
    checkpoint: Path | None = Path("checkpoints/cifar10-base"),
    precisions: tuple[str, ...] = ("fp32", "bf16", "fp16"),
    steps: int = 50,
    batch_sizes: tuple[int, ...] = (128, 512),
    timed_steps: int = 10,
    train_images: int = 5120,
    baseline: bool = True,
    rounds: int = 3,
) -> Path:
    """Run every measurement and write the tables; returns the markdown file. The defaults are the
    GPU check; tests pass tiny settings."""
    if checkpoint is not None and (checkpoint / "model.safetensors").exists():
        model, diffusion, trained = build("base", checkpoint)
    else:
        model, diffusion, trained = UNet(model_config).eval(), DiffusionConfig(), False
    schedule = NoiseSchedule(diffusion)
    model = model.to(device, memory_format=torch.channels_last)
    auto = resolve_precision("auto", device)
    precision_of_run = auto if auto in precisions else precisions[0]  # one of the timed steps' precisions
    results = {
        "machine": machine(),
        "trained_weights": trained,
        "grids": time_grids(model, schedule, list(precisions), steps, rounds),
        "graph_max_difference": graph_difference(model, schedule, steps),
        "same_seed_mean_abs_difference_vs_cpu": same_seed_difference(model, schedule, steps),
        "training": time_training(model_config, list(precisions), list(batch_sizes), timed_steps, baseline, device),
        "train_run": training_run(model_config, precision_of_run, batch_sizes[0], train_images, device),
        "auto_precision_now": auto,
    }
    name = f"gpu-check{results_suffix(device)}"
    assets.mkdir(parents=True, exist_ok=True)
    (assets / f"{name}.json").write_text(json.dumps(results, indent=2))
    path = assets / f"{name}.md"
    path.write_text(report(results, steps))
    print(path.read_text())
    return path


def report(results: dict, steps: int) -> str:
    grids = markdown_table(
        ["precision", "path", f"s per {GRID_SIZE}-image guided DDIM-{steps} grid", "first frame"],
        [
            [
                g["precision"],
                "CUDA graph" if g["cuda_graph"] else "plain",
                f"{g['seconds']:.3f}",
                f"{1000 * g['first_frame_s']:.0f} ms",
            ]
            for g in results["grids"]
        ],
    )
    training = markdown_table(
        ["model", "batch", "precision", "Trainer step images/s"],
        [[t["model"], t["batch_size"], t["precision"], f"{t['images_per_s']:.0f}"] for t in results["training"]],
    )
    run = results["train_run"]
    step_speed = next(
        (
            t["images_per_s"]
            for t in results["training"]
            if (t["model"], t["batch_size"], t["precision"]) == ("FastDiff", run["batch_size"], run["precision"])
        ),
        None,
    )
    fastest_grid = min(results["grids"], key=lambda g: g["seconds"])
    fastest_step = max((t for t in results["training"] if t["model"] == "FastDiff"), key=lambda t: t["images_per_s"])
    differences = ", ".join(f"{k}: {v:.4f}" for k, v in results["same_seed_mean_abs_difference_vs_cpu"].items())
    return (
        f"# GPU check\n\nMeasured with `python -m fastdiff bench gpu` on: {results['machine']}"
        f"{'' if results['trained_weights'] else ' (random weights)'}.\n\n{grids}\n\n"
        f"Graph path vs plain path, fp32: largest pixel difference {results['graph_max_difference']:.2e}.\n\n"
        f"{training}\n\n"
        f"`train` (Trainer.run, {run['images']} {run['data']}, batch {run['batch_size']}, {run['precision']}): "
        f"{run['images_per_s']:.0f} images/s"
        + (f", {100 * run['images_per_s'] / step_speed:.0f}% of its Trainer step alone.\n\n" if step_speed else ".\n\n")
        + f"Same seeds, this device vs the CPU, fp32, mean absolute pixel difference in [-1, 1]: {differences}.\n\n"
        f"Fastest grid: {fastest_grid['precision']}{' with the CUDA graph' if fastest_grid['cuda_graph'] else ''}; "
        f"fastest FastDiff training step: {fastest_step['precision']} at batch {fastest_step['batch_size']}. "
        f"--precision auto picks {results['auto_precision_now']} here now (device.AUTO_PRECISION).\n"
    )
