"""The cascade's measured comparison, `python -m fastdiff bench cascade`: the single-resolution model
against 2- and 3-stage LowDiff cascades, speed and quality in one run, written to assets/cascade.md.

Speed: seconds per guided batch of 64 images, the fastest of TIMING_REPEATS runs (each configuration
in a fresh process, so that its peak memory is its own), images/s, NFE per resolution and the
effective NFE of appendix B (step latencies measured at that batch). Quality: class accuracy and KID
of n samples with the project's evaluator. With --sweep, first appendix C's sweep of the first
stage's truncation point, scored by KID.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .bench import GUIDANCE, isolated, machine, markdown_table, time_run
from .cascade_sampling import (Stage, cascade_sample_steps, default_stages, effective_nfe, format_nfe,
                               measure_step_latency, resolutions_of, stage_nfe, sweep, sweep_grid)
from .checkpoint import load_model
from .classifier import classify, load_classifier
from .data import load_dataset
from .device import resolve_device, resolve_precision
from .evaluate import DATA_NOTE, sample_quality
from .metrics import kid
from .samplers import SAMPLER_NAMES
from .schedule import NoiseSchedule

SAMPLER_STEPS = (("ddim", 50), ("dpm++", 20))
TIMING_REPEATS = 3


def time_batch(checkpoint: Path, sampler: str, steps: int, stages: list[Stage] | None, batch_size: int) -> dict:
    """Seconds for one guided batch of images (plain sampling when stages is None), and the effective
    NFE from step latencies at the guided batch size."""
    device = resolve_device()
    model, diffusion, _ = load_model(checkpoint, device)
    schedule, precision = NoiseSchedule(diffusion), resolve_precision("auto", device)
    labels = torch.arange(batch_size, device=device) % model.config.num_classes
    seeds = list(range(batch_size))
    chosen = stages or [Stage(model.config.image_size, sampler, steps)]

    def run(sampler_name: str, num_steps: int | None):
        plan = chosen if num_steps == steps else default_stages(len(chosen), model, schedule, sampler_name, num_steps)
        return cascade_sample_steps(model, schedule, labels, seeds, plan, GUIDANCE, precision=precision)

    result = time_run(run, sampler, steps, repeats=TIMING_REPEATS)
    nfe = stage_nfe(chosen)
    latency = measure_step_latency(model, batch_size=2 * batch_size) if len(chosen) > 1 else {}
    return result | {"nfe": nfe, "effective_nfe": effective_nfe(nfe, latency) if latency else sum(nfe.values()),
                     "parameters": sum(p.numel() for p in model.parameters())}


class QualityJudge:
    """Class accuracy and KID of samples drawn with given stage settings, against the test split."""

    def __init__(self, classifier_dir: Path, data: str, device: torch.device):
        self.precision = resolve_precision("auto", device)
        self.classifier, _ = load_classifier(classifier_dir, device)
        test = load_dataset(data, "test")
        _, self.test_features = classify(self.classifier, test.images.float().div(127.5).sub(1), self.precision)

    def __call__(self, checkpoint: Path, sampler: str, steps: int, stages: list[Stage] | None, n: int) -> dict:
        model, diffusion, _ = load_model(checkpoint, resolve_device())
        metrics, _ = sample_quality(model, NoiseSchedule(diffusion), self.classifier, self.test_features, n,
                                    sampler, steps, GUIDANCE, stages or 1, precision=self.precision)
        return metrics


def sweep_first_stage(judge: QualityJudge, cascade: Path, base: list[Stage], n: int) -> tuple[str, list[Stage]]:
    """Appendix C on our weights: the first stage's truncation point (as a fraction of its grid), the
    other stages as in base, scored by KID of n samples. Returns (markdown table, best stages)."""
    sampler, steps = base[0].sampler, base[0].num_steps
    candidates = sweep_grid(base, 0, num_steps=(steps,))
    scored = sweep(lambda stages: judge(cascade, sampler, steps, stages, n)["kid"], candidates)
    rows = [[format_nfe(stage_nfe(stages)), f"{stages[0].truncate} of {stages[0].num_steps}", f"{score:.4f}"]
            for score, stages in scored]
    return markdown_table(["NFE", "first stage truncated after", f"KID (n={n})"], rows), scored[0][1]


def compare(cascade: Path, single: Path | None, classifier_dir: Path, data: str, n: int = 500,
            with_sweep: bool = False, sweep_n: int = 200, batch_size: int = 64) -> str:
    """The comparison table (and the sweeps) as markdown. single: the plain checkpoint the cascade rows
    are compared against; without one, the cascade's own weights sampled at full resolution."""
    model, diffusion, _ = load_model(cascade)  # a clear error when it is missing
    if len(resolutions_of(model)) < 3:
        raise ValueError(f"{cascade}: not a 3-resolution cascade (train one with `python -m fastdiff train --cascade`)")
    judge = QualityJudge(classifier_dir, data, resolve_device())
    order = torch.randperm(len(judge.test_features), generator=torch.Generator().manual_seed(0))
    shuffled = judge.test_features[order]  # the split is ordered by class
    real_kid, _ = kid(shuffled[:n], shuffled[n:])
    sections, rows = [], []
    for sampler, steps in SAMPLER_STEPS:
        configurations = [(f"single resolution ({single.name})", single, None)] if single else []
        configurations.append((f"{cascade.name}, 1 stage", cascade, None))
        for num_stages in (2, 3):
            stages = default_stages(num_stages, model, NoiseSchedule(diffusion), sampler, steps)
            if with_sweep:
                table, stages = sweep_first_stage(judge, cascade, stages, sweep_n)
                sections.append(f"### Sweep: {num_stages} stages, {SAMPLER_NAMES[sampler]}-{steps}\n\n{table}\n")
            configurations.append((f"{cascade.name}, {num_stages} stages", cascade, stages))
        for label, checkpoint, stages in configurations:
            speed = isolated(time_batch, checkpoint, sampler, steps, stages, batch_size)
            quality = judge(checkpoint, sampler, steps, stages, n)
            if stages is None and (checkpoint == single or single is None):
                reference = (speed, quality)
            gain = (f"{100 * reference[0]['seconds'] / speed['seconds'] - 100:+.0f}%, "
                    f"{100 * (quality['class_accuracy'] - reference[1]['class_accuracy']):+.1f} points, "
                    f"x{quality['kid'] / reference[1]['kid']:.2f}" if stages else "")
            rows.append([label, f"{SAMPLER_NAMES[sampler]}-{steps}", format_nfe(speed["nfe"]), speed["effective_nfe"],
                         f"{speed['seconds']:.2f}", f"{batch_size / speed['seconds']:.1f}",
                         f"{speed['parameters'] / 1e6:.3f}M", f"{speed['peak_rss_mb']:.0f} MB",
                         f"{100 * quality['class_accuracy']:.1f}%", f"{quality['kid']:.4f} ± {quality['kid_std']:.4f}",
                         gain])
            print(rows[-1], flush=True)
    headers = ["model", "sampler", "NFE per resolution", "effective NFE", f"s per guided batch of {batch_size}",
               "images/s", "parameters", "peak RSS", f"class acc. (n={n})", f"KID (n={n})",
               f"vs {'single resolution' if single else '1 stage of the same weights'}: images/s, class acc., KID"]
    return (f"Measured with `python -m fastdiff bench cascade{' --sweep' if with_sweep else ''}` on {DATA_NOTE}, "
            f"guidance w={GUIDANCE:g}, on: {machine()}. For scale, the KID between {n} real test images "
            f"and the rest of the test split is {real_kid:.4f}.\n\n" + markdown_table(headers, rows) + "\n\n"
            + "\n".join(sections))
