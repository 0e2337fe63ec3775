"""Speed measurements anyone can re-run: `python -m fastdiff bench sample|train|all` measures on the
current device and writes markdown tables (with the machine they were measured on) and a plot to
assets/. Each configuration runs in a fresh process so that its peak memory is its own."""
from __future__ import annotations

import multiprocessing
import platform
import queue as queue_module
import time
from pathlib import Path
from typing import Callable

import torch

from .baseline import BaselineUNet
from .cascade_sampling import (cascade_sample_steps, default_stages, effective_nfe, format_nfe,
                               measure_step_latency, stage_nfe)
from .checkpoint import load_model
from .config import DiffusionConfig, ModelConfig, TrainConfig
from .data import ImageDataset
from .device import AUTOCAST_DTYPES, peak_resident_mb, resolve_device, resolve_precision
from .eval_record import configuration_label, measured_at, read_eval
from .pipeline import DEFAULT_STEPS, sample_steps
from .samplers import SamplerSteps, drain
from .schedule import NoiseSchedule
from .train import Trainer
from .unet import UNet

GRID_SIZE = 16      # images per guided grid (w = 2: 32 images per forward pass)
GUIDANCE = 2.0


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    device = resolve_device()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu
    return (f"{name}; {torch.get_num_threads()} threads; torch {torch.__version__}; "
            f"precision {resolve_precision('auto', device)}")


def matmul_peak_gflops(device: torch.device, dtype: torch.dtype, size: int = 2048, seconds: float = 2.0) -> float:
    """Achieved FLOP/s of a large square matmul: the ceiling the networks are compared against."""
    a, b = torch.randn(size, size, device=device, dtype=dtype), torch.randn(size, size, device=device, dtype=dtype)
    a @ b
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 2 * size ** 3 * count / (time.perf_counter() - start) / 1e9


def forward_gflops(model: torch.nn.Module, image_size: int = 32) -> float:
    """FLOPs of one forward pass for one image, counted by PyTorch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.randn(1, 3, image_size, image_size)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.cpu()(x, torch.tensor([10]), torch.tensor([0]))
    return counter.get_total_flops() / 1e9


def build(kind: str, checkpoint: Path | None = None):
    """A network to time: a shipped checkpoint when it exists, else random weights of the same shape."""
    if checkpoint is not None and (Path(checkpoint) / "model.safetensors").exists():
        model, diffusion, _ = load_model(checkpoint)
        return model, diffusion, True
    model = BaselineUNet() if kind == "baseline" else UNet(ModelConfig(attention=kind == "attention"))
    return model.eval(), DiffusionConfig(), False


def _isolated(queue, fn, args):
    queue.put(fn(*args) | {"peak_rss_mb": peak_resident_mb()})


def isolated(fn, *args) -> dict:
    """Run fn(*args) -> dict in a fresh process; adds its peak resident memory."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_isolated, args=(queue, fn, args))
    process.start()
    while process.is_alive() or not queue.empty():
        try:
            result = queue.get(timeout=1)
            process.join()
            return result
        except queue_module.Empty:
            continue
    raise RuntimeError(f"benchmark process for {fn.__name__}{args} died with exit code {process.exitcode}")


def grid_setup(kind: str, checkpoint: Path | None):
    """(model, schedule, labels, seeds, precision, trained) for timing one guided 16-image grid."""
    device = resolve_device()
    model, diffusion, trained = build(kind, checkpoint)
    model = model.to(device, memory_format=torch.channels_last)
    labels = torch.arange(GRID_SIZE, device=device) % 10
    return model, NoiseSchedule(diffusion), labels, list(range(GRID_SIZE)), resolve_precision("auto", device), trained


def time_run(run: Callable[[str, int | None], SamplerSteps], sampler: str, steps: int | None,
             timed_steps: int | None = None, repeats: int = 1) -> dict:
    """Seconds of run(sampler, steps) after a run("ddim", 2) warm-up (first-call allocations and kernel
    selection), the fastest of `repeats` runs (as timeit); with timed_steps, the mean step time over that
    many steps extrapolated to all steps."""
    return time_runs([run], sampler, steps, timed_steps, repeats)[0]


def time_runs(runs: list[Callable[[str, int | None], SamplerSteps]], sampler: str, steps: int | None,
              timed_steps: int | None = None, rounds: int = 1) -> list[dict]:
    """time_run for several configurations in one process: all are warmed up, then each is timed once per
    round, taking turns, so that a drift of the machine's speed over minutes falls on all alike; the
    fastest round of each."""
    warmups = []
    for run in runs:
        start = time.perf_counter()
        drain(run("ddim", 2))
        warmups.append(time.perf_counter() - start)
    timings = [[] for _ in runs]
    for _ in range(rounds):
        for run, timing in zip(runs, timings):
            timing.append(_timed(run, sampler, steps, timed_steps))
    return [min(timing, key=lambda result: result["seconds"]) | {"warmup_s": warmup}
            for timing, warmup in zip(timings, warmups)]


def _timed(run: Callable[[str, int | None], SamplerSteps], sampler: str, steps: int | None,
           timed_steps: int | None) -> dict:
    start = time.perf_counter()
    first_frame, done = None, 0
    for step in run(sampler, steps):
        step.x0.float().sum().item()  # force completion, as a UI converting the frame would
        first_frame = first_frame or time.perf_counter() - start
        done += 1
        if timed_steps and done == timed_steps:
            break
    return {"seconds": (time.perf_counter() - start) * step.num_steps / done, "first_frame_s": first_frame,
            "extrapolated_from": done if done < step.num_steps else None}


def time_sampling(kind: str, checkpoint: Path | None, sampler: str, steps: int, timed_steps: int | None = None) -> dict:
    """Seconds for one guided 16-image grid; with timed_steps, the mean step time over that many steps
    is extrapolated to all steps (for configurations too slow to run whole). kind "compiled": the base
    network under torch.compile, whose compilation happens in the warm-up."""
    model, schedule, labels, seeds, precision, trained = grid_setup(kind, checkpoint)
    if kind == "compiled":
        model = torch.compile(model)
    result = time_run(lambda sampler, steps: sample_steps(model, schedule, labels, seeds, sampler, steps, GUIDANCE,
                                                          precision=precision), sampler, steps, timed_steps)
    return result | {"trained": trained, "nfe": str(steps), "effective_nfe": steps}


STREAMING_REPEATS = 3


def time_app_streaming(checkpoint: Path | None, steps: int) -> dict:
    """The DDIM grid through the app's generation path (make_request, then the throttled stream that
    converts frames for the page and keeps the animation's), and the same request drained without
    streaming, alternated STREAMING_REPEATS times in one process so that the cost of streaming is not lost in
    the noise between processes; the fastest of each."""
    from .app_generate import make_request, sampler_steps, stream
    from .app_models import LoadedModel

    model, schedule, _, _, precision, trained = grid_setup("base", checkpoint)
    loaded = LoadedModel(model, schedule, "bench")
    warmup = make_request(loaded, "random", "DDIM", 2, GUIDANCE, 0.0, 0, GRID_SIZE)
    drain(stream(loaded, warmup, precision, []))
    request = make_request(loaded, "random", "DDIM", steps, GUIDANCE, 0.0, 0, GRID_SIZE)
    streamed, plain = [], []
    for _ in range(STREAMING_REPEATS):
        start, frames, first_frame = time.perf_counter(), 0, None
        for _ in stream(loaded, request, precision, []):
            first_frame = first_frame or time.perf_counter() - start
            frames += 1
        streamed.append(time.perf_counter() - start)
        start = time.perf_counter()
        drain(sampler_steps(loaded, request, precision))
        plain.append(time.perf_counter() - start)
    return {"seconds": min(streamed), "plain_seconds": min(plain), "first_frame_s": first_frame,
            "extrapolated_from": None, "frames": frames, "trained": trained, "nfe": str(steps), "effective_nfe": steps}


def time_cascade_sampling(checkpoint: Path, sampler: str, num_stages: int) -> dict:
    """time_sampling for a LowDiff cascade with its default stages, and its effective NFE from the step
    latency measured at the grid's batch size (appendix B)."""
    model, schedule, labels, seeds, precision, trained = grid_setup("cascade", checkpoint)

    def run(sampler: str, steps: int | None) -> SamplerSteps:
        stages = default_stages(num_stages, model, schedule, sampler, steps)
        return cascade_sample_steps(model, schedule, labels, seeds, stages, GUIDANCE, precision=precision)

    result = time_run(run, sampler, None)
    nfe = stage_nfe(default_stages(num_stages, model, schedule, sampler))
    latency = measure_step_latency(model, batch_size=2 * GRID_SIZE)
    return result | {"trained": trained, "nfe": format_nfe(nfe), "effective_nfe": effective_nfe(nfe, latency)}


def time_training(kind: str, precision: str, batch_size: int = 128, timed_steps: int = 4) -> dict:
    """Images/s of real Trainer steps (loss, backward, Adam, EMA) on synthetic data."""
    device = resolve_device()
    images = torch.randint(0, 256, (batch_size * (timed_steps + 2), 3, 32, 32), dtype=torch.uint8)
    dataset = ImageDataset(images, torch.arange(len(images)) % 10, tuple(str(i) for i in range(10)))
    model = BaselineUNet() if kind == "baseline" else None
    trainer = Trainer(dataset, Path("/nonexistent"), TrainConfig(batch_size=batch_size, precision=precision),
                      ModelConfig(attention=kind == "attention"), device=device, model=model)
    batches = list(dataset.batches(batch_size, torch.Generator().manual_seed(0)))
    for x0, labels in batches[:2]:
        trainer.train_step(x0, labels)  # warm-up
    start = time.perf_counter()
    for x0, labels in batches[2:]:
        trainer.train_step(x0, labels)
    return {"images_per_s": batch_size * timed_steps / (time.perf_counter() - start)}


def markdown_table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows])


def quality(checkpoint: Path | None, configuration: tuple[str, int, float, int]) -> tuple[str, str]:
    """Class accuracy and KID from a checkpoint's eval.json, labelled with the configuration they were
    measured at when it is not this row's (sampler, steps, guidance, stages)."""
    record = read_eval(checkpoint) if checkpoint else None
    try:
        at = measured_at(record)
        accuracy, kid = f"{100 * record['class_accuracy']:.1f}%", f"{record['kid']:.4f}"
    except (TypeError, KeyError, ValueError):  # no eval.json, or not evaluate.py's format
        return "not measured", "not measured"
    note = "" if at == configuration else f" (at {configuration_label(*at)})"
    return accuracy + note, kid + note


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
CASCADE = Path("checkpoints/cifar10-cascade")
CASCADE_CONFIGS = [(stages, sampler) for stages in (2, 3) for sampler in ("ddim", "dpm++")]  # default stages


def sample_jobs(cascade: Path = CASCADE) -> list[tuple[str, str, str | None, tuple, Callable, tuple]]:
    """(model, sampler, checkpoint, (sampler, steps, guidance, stages), timing function, its arguments) per
    row of the sampling table; the cascade's rows when its checkpoint exists."""
    jobs = []
    for label, kind, checkpoint, sampler, steps, timed in SAMPLE_CONFIGS:
        jobs.append((label, f"{sampler.upper()}-{steps}", checkpoint, (sampler, steps, GUIDANCE, 1), time_sampling,
                     (kind, checkpoint, sampler, steps, timed)))
    jobs.append(("FastDiff, through the app's streaming", "DDIM-50", "checkpoints/cifar10-base",
                 ("ddim", 50, GUIDANCE, 1), time_app_streaming, ("checkpoints/cifar10-base", 50)))
    if (cascade / "model.safetensors").exists():
        for stages, sampler in CASCADE_CONFIGS:
            jobs.append((f"FastDiff cascade, {stages} stages", f"{sampler.upper()}, default stages", str(cascade),
                         (sampler, DEFAULT_STEPS[sampler], GUIDANCE, stages), time_cascade_sampling,
                         (cascade, sampler, stages)))
    return jobs


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
    for label, sampler, checkpoint, configuration, timing, args in sample_jobs():
        result = isolated(timing, *args)
        kind = {time_sampling: args[0], time_app_streaming: "base"}.get(timing)  # None: a cascade
        utilisation = (f"{100 * 2 * GRID_SIZE * int(result['nfe']) * gflops[kind] / result['seconds'] / peak:.0f}%"
                       if kind else "")
        results.append((f"{label} {sampler}", result))
        baseline_seconds = results[0][1]["seconds"]
        accuracy, kid = quality(checkpoint, configuration) if result["trained"] else ("untrained weights", "")
        extrapolated = result["extrapolated_from"]
        note = f" (mean of {extrapolated} steps x {result['nfe']})" if extrapolated else ""
        if label.endswith("torch.compile"):
            note += f" (after {result['warmup_s']:.0f} s of compilation)"
        if "frames" in result:
            overhead = 100 * (result["seconds"] / result["plain_seconds"] - 1)
            note += (f" ({result['frames']} frames sent; {overhead:+.1f}% vs {result['plain_seconds']:.2f} s drained "
                     f"without streaming, fastest of {STREAMING_REPEATS} alternating runs each)")
        rows.append([label, sampler, result["nfe"], result["effective_nfe"], f"{result['seconds']:.2f}{note}",
                     f"{GRID_SIZE / result['seconds']:.3g}", f"{baseline_seconds / result['seconds']:.1f}x",
                     f"{1000 * result['first_frame_s']:.0f} ms", f"{result['peak_rss_mb']:.0f} MB", utilisation,
                     accuracy, kid])
        print(rows[-1], flush=True)
    table = markdown_table(["model", "sampler", "NFE", "effective NFE", f"s per {GRID_SIZE}-image guided grid",
                            "images/s", "speed vs baseline", "first frame", "peak RSS",
                            f"share of {peak:.0f} GFLOP/s {amp} matmul", "class acc.", "KID"], rows)
    _plot_sampling(results, assets / "bench-sample.png")
    from .bench_peer import bench_peer  # it builds on this module

    from .bench_app import app_peak_memory

    ours = dict(results)["FastDiff DDIM-50"]["seconds"]
    memory = app_peak_memory(Path("checkpoints"))
    app_line = (f"The app (`python app.py`, a fresh process) after a guided {GRID_SIZE}-image DDIM-50 grid from each "
                f"of {', '.join(memory['generated'])}, all loaded at once: peak resident memory "
                + (f"{memory['peak_rss_mb']:.0f} MB." if memory["peak_rss_mb"] else "not measured (no /proc here)."))
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
    for label, kind in (("FastDiff", "base"), ("FastDiff + attention", "attention"), ("Baseline DDPM U-Net", "baseline")):
        model, _, _ = build(kind)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        gflops = forward_gflops(model)
        timed = 2 if kind == "baseline" else 6
        fp32 = isolated(time_training, kind, "fp32", 128, timed)
        mixed = isolated(time_training, kind, amp, 128, timed)
        speeds[kind] = (fp32["images_per_s"], mixed["images_per_s"])
        utilisation = 3 * gflops * mixed["images_per_s"] / peak  # backward ~ 2x forward
        rows.append([label, f"{params:.2f}M", f"{gflops:.2f}", f"{fp32['images_per_s']:.1f}",
                     f"{mixed['images_per_s']:.1f}", f"{mixed['images_per_s'] / fp32['images_per_s']:.2f}x",
                     f"{fp32['peak_rss_mb']:.0f} / {mixed['peak_rss_mb']:.0f} MB", f"{100 * utilisation:.0f}%"])
        print(rows[-1], flush=True)
    table = markdown_table(["model", "parameters", "GFLOP per image (forward)", "fp32 images/s",
                            f"{amp} images/s", "AMP speed-up", "peak RSS fp32 / AMP",
                            f"AMP utilisation of {peak:.0f} GFLOP/s {amp} matmul"], rows)
    ratio = speeds["base"][1] / speeds["baseline"][0]
    return table + (f"\n\nFastDiff with AMP trains {ratio:.1f}x as many images/s as the baseline in fp32 "
                    f"({speeds['base'][1] / speeds['baseline'][1]:.1f}x the baseline with AMP).")


def run(what: str, assets: Path = Path("assets")) -> None:
    assets.mkdir(parents=True, exist_ok=True)
    header = f"Measured with `python -m fastdiff bench {{}}` on: {machine()}.\n\n"
    for name, bench in (("train", bench_train), ("sample", bench_sample)):
        if what in (name, "all"):
            text = f"# Benchmark: {name}\n\n" + header.format(name) + bench(assets) + "\n"
            (assets / f"bench-{name}.md").write_text(text)
            print(text)
