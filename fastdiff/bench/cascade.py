"""The cascade's measured comparison, `python -m fastdiff bench cascade`: the single-resolution model
against 2- and 3-stage LowDiff cascades, speed and quality in one run, written to assets/cascade.md.

Speed: seconds per guided batch of 64 images, the fastest of TIMING_ROUNDS rounds in which the
configurations take turns (the speed of a shared machine drifts over minutes), images/s, NFE
per resolution, the effective NFE of appendix B (step latencies measured at that batch) and the peak
memory of each configuration in a fresh process. Quality: class accuracy and KID of n samples with
the project's evaluator. With --sweep, first appendix C's sweep of the first stage's truncation
point, scored by KID, then the final stage's step count, walked down from the default while the
samples match the single-resolution model's quality.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from pathlib import Path

import torch

from ..data import dataset_label
from ..device import resolve_device, resolve_precision
from ..diffusion.cascade import FINAL_FRACTION, Stage, default_stages, resolutions_of
from ..diffusion.samplers import SAMPLER_NAMES
from ..diffusion.sampling import final_images, make_plan, sample_steps
from ..diffusion.schedule import NoiseSchedule
from ..eval.cost import effective_nfe, format_nfe, measure_step_latency, stage_nfe
from ..eval.evaluate import QualityJudge
from ..eval.metrics import kid
from ..nn.checkpoint import load_model
from ..report import machine, markdown_table
from .timing import GUIDANCE, isolated, time_runs

SAMPLER_STEPS = (("ddim", 50), ("dpm++", 20))
TIMING_ROUNDS = 3
TARGET_GAIN = 0.5  # the target: +50% images/s over the single-resolution model
TARGET_MATCH = (2.0, 1.10)  # at matched quality: class accuracy within 2 points, KID within 10%
SWEEP_MATCH = (2.0, 1.05)  # the final-stage sweep: half the KID margin (a point of accuracy is an image there)
FINAL_FRACTIONS = (FINAL_FRACTION, 0.45, 0.4, 0.35, 0.3)  # final-stage steps / sampler steps, walked down

Configuration = tuple[str, Path, list[Stage] | None]  # (label, checkpoint, stages; None: plain sampling)


def batch_run(model, diffusion, sampler: str, steps: int, stages: list[Stage] | None, batch_size: int):
    """run(sampler, steps) that samples one guided batch with the given stages (plain sampling when stages
    is None); other (sampler, steps), as for the warm-up, use the default stages."""
    device = next(model.parameters()).device
    schedule, precision = NoiseSchedule(diffusion), resolve_precision("auto", device)
    labels = torch.arange(batch_size, device=device) % model.config.num_classes
    chosen = stages or [Stage(model.config.image_size, sampler, steps)]

    def run(sampler_name: str, num_steps: int | None):
        stages = chosen if num_steps == steps else len(chosen)
        plan = make_plan(model, schedule, sampler_name, num_steps, GUIDANCE, stages=stages)
        return sample_steps(model, schedule, labels, list(range(batch_size)), plan, precision)

    return run


def sample_one_batch(checkpoint: Path, sampler: str, steps: int, stages: list[Stage] | None, batch_size: int) -> dict:
    """One guided batch, for isolated() to measure a configuration's peak memory in a process of its own."""
    model, diffusion, _ = load_model(checkpoint, resolve_device())
    final_images(batch_run(model, diffusion, sampler, steps, stages, batch_size)(sampler, steps))
    return {}


def time_batches(
    configurations: list[Configuration], models: dict, sampler: str, steps: int, batch_size: int
) -> list[dict]:
    """Per configuration: seconds for one guided batch, timed in TIMING_ROUNDS rounds in this process with
    the configurations taking turns (time_runs), so that they are compared at the same machine speed;
    NFE per resolution, effective NFE from step latencies at the guided batch size (measured once per
    cascade), parameters, and the peak memory of the batch sampled in a fresh process. models: checkpoint
    -> (model, diffusion config), loaded."""
    runs = [
        batch_run(*models[checkpoint], sampler, steps, stages, batch_size) for _, checkpoint, stages in configurations
    ]
    timings = time_runs(runs, sampler, steps, rounds=TIMING_ROUNDS)
    latencies, results = {}, []
    for (_, checkpoint, stages), timing in zip(configurations, timings):
        model = models[checkpoint][0]
        nfe = stage_nfe(stages or [Stage(model.config.image_size, sampler, steps)])
        if stages and checkpoint not in latencies:
            latencies[checkpoint] = measure_step_latency(model, batch_size=2 * batch_size)
        memory = isolated(sample_one_batch, checkpoint, sampler, steps, stages, batch_size)
        results.append(
            timing
            | memory
            | {
                "nfe": nfe,
                "effective_nfe": effective_nfe(nfe, latencies[checkpoint]) if stages else sum(nfe.values()),
                "parameters": sum(p.numel() for p in model.parameters()),
            }
        )
    return results


def stage_candidates(
    base: list[Stage],
    stage: int = 0,
    num_steps: Iterable[int] = (35, 50, 70),
    truncate_fractions: Iterable[float] = (0.45, 0.5, 0.55, 0.6, 0.65),
) -> list[list[Stage]]:
    """Appendix C's ablations as candidates: one truncated stage's grid length (table 12, right) and
    truncation point as a fraction of it (table 12, left); the other stages as in `base`."""
    candidates = []
    for steps in num_steps:
        for fraction in truncate_fractions:
            changed = dataclasses.replace(
                base[stage], num_steps=steps, truncate=min(steps - 1, max(1, round(steps * fraction)))
            )
            candidates.append(base[:stage] + [changed] + base[stage + 1 :])
    return candidates


def ranked(
    evaluate: Callable[[list[Stage]], float], candidates: Iterable[list[Stage]]
) -> list[tuple[float, list[Stage]]]:
    """Score each candidate with evaluate (e.g. the FID of samples drawn with it: lower is better) and
    return (score, stages) pairs, best first."""
    return sorted(((evaluate(stages), stages) for stages in candidates), key=lambda pair: pair[0])


Judge = Callable[[Path, str, int, list[Stage] | None, int], dict]  # (checkpoint, sampler, steps, stages, n)


def sweep_first_stage(judge: Judge, cascade: Path, base: list[Stage], n: int) -> tuple[str, list[Stage]]:
    """Appendix C on our weights: the first stage's truncation point (as a fraction of its grid), the
    other stages as in base, scored by KID of n samples. Returns (markdown table, best stages)."""
    sampler, steps = base[0].sampler, base[0].num_steps
    candidates = stage_candidates(base, 0, num_steps=(steps,))
    scored = ranked(lambda stages: judge(cascade, sampler, steps, stages, n)["kid"], candidates)
    rows = [
        [format_nfe(stage_nfe(stages)), f"{stages[0].truncate} of {stages[0].num_steps}", f"{score:.4f}"]
        for score, stages in scored
    ]
    return markdown_table(["NFE", "first stage truncated after", f"KID (n={n})"], rows), scored[0][1]


def matches(quality: dict, reference: dict, points: float, kid_ratio: float) -> bool:
    """Whether quality is within `points` of the reference's class accuracy and within kid_ratio of its KID
    (the accuracies are float32 shares of n, so the difference is rounded before it is compared)."""
    return (
        round(100 * (reference["class_accuracy"] - quality["class_accuracy"]), 3) <= points
        and quality["kid"] <= kid_ratio * reference["kid"]
    )


def sweep_final_stage(
    judge: Judge, cascade: Path, base: list[Stage], reference: dict, n: int
) -> tuple[str, list[Stage]]:
    """The final stage's step count, which costs the most (a full-resolution evaluation each): from the
    default down through FINAL_FRACTIONS of the sampler's steps, while n samples still match the
    reference's quality within SWEEP_MATCH; the fewest steps reached (the default when it does not
    match). Walking down, a later candidate that matches by the noise of n samples is not reached.
    Returns (markdown table, chosen stages)."""
    sampler, steps = base[0].sampler, base[0].num_steps
    rows, chosen = [], base
    for fraction in FINAL_FRACTIONS:
        stages = base[:-1] + [dataclasses.replace(base[-1], num_steps=max(1, round(steps * fraction)))]
        quality = judge(cascade, sampler, steps, stages, n)
        match = matches(quality, reference, *SWEEP_MATCH)
        rows.append(
            [
                format_nfe(stage_nfe(stages)),
                f"{100 * quality['class_accuracy']:.1f}%",
                f"{quality['kid']:.4f}",
                "yes" if match else "no",
            ]
        )
        if not match:
            break
        chosen = stages
    headers = [
        "NFE",
        f"class acc. (n={n})",
        f"KID (n={n})",
        f"matches the reference ({100 * reference['class_accuracy']:.1f}%, KID {reference['kid']:.4f})",
    ]
    return markdown_table(headers, rows), chosen


def compare(
    cascade: Path,
    single: Path | None,
    classifier_dir: Path,
    data: str,
    n: int = 500,
    with_sweep: bool = False,
    sweep_n: int = 200,
    batch_size: int = 64,
) -> str:
    """The comparison table (and the sweeps) as markdown. single: the plain checkpoint the cascade rows
    are compared against; without one, the cascade's own weights sampled at full resolution."""
    models = {path: load_model(path, resolve_device())[:2] for path in (cascade, single) if path}  # clear errors
    model, diffusion = models[cascade]
    if len(resolutions_of(model)) < 3:
        raise ValueError(f"{cascade}: not a 3-resolution cascade (train one with `python -m fastdiff train --cascade`)")
    evaluator = QualityJudge(classifier_dir, data, resolve_device())

    def judge(checkpoint: Path, sampler: str, steps: int, stages: list[Stage] | None, n: int) -> dict:
        model, diffusion = models[checkpoint]
        return evaluator(model, NoiseSchedule(diffusion), n, sampler, steps, stages or 1)

    order = torch.randperm(len(evaluator.test_features), generator=torch.Generator().manual_seed(0))
    shuffled = evaluator.test_features[order]  # the split is ordered by class
    real_kid, _ = kid(shuffled[:n], shuffled[n:])
    sections, rows = [], []
    for sampler, steps in SAMPLER_STEPS:
        configurations = [(f"single resolution ({single.name})", single, None)] if single else []
        configurations.append((f"{cascade.name}, 1 stage", cascade, None))
        if with_sweep:
            sweep_reference = judge(single or cascade, sampler, steps, None, sweep_n)
        for num_stages in (2, 3):
            stages = default_stages(num_stages, model, NoiseSchedule(diffusion), sampler, steps)
            if with_sweep:
                first, stages = sweep_first_stage(judge, cascade, stages, sweep_n)
                final, stages = sweep_final_stage(judge, cascade, stages, sweep_reference, sweep_n)
                sections.append(
                    f"### Sweep: {num_stages} stages, {SAMPLER_NAMES[sampler]}-{steps}\n\n"
                    f"First stage's truncation point (lowest KID):\n\n{first}\n\n"
                    f"Final stage's steps (down from the default while the samples match the "
                    f"reference, {configurations[0][0]} at n={sweep_n}):\n\n{final}\n"
                )
            configurations.append((f"{cascade.name}, {num_stages} stages", cascade, stages))
        speeds = time_batches(configurations, models, sampler, steps, batch_size)
        for (label, checkpoint, stages), speed in zip(configurations, speeds):
            quality = judge(checkpoint, sampler, steps, stages, n)
            if stages is None and (checkpoint == single or single is None):
                reference = (speed, quality)
            gain = reference[0]["seconds"] / speed["seconds"] - 1
            met = gain >= TARGET_GAIN and matches(quality, reference[1], *TARGET_MATCH)
            versus = (
                f"{100 * gain:+.0f}%, {100 * (quality['class_accuracy'] - reference[1]['class_accuracy']):+.1f} "
                f"points, x{quality['kid'] / reference[1]['kid']:.2f}: target {'met' if met else 'not met'}"
                if stages
                else ""
            )
            rows.append(
                [
                    label,
                    f"{SAMPLER_NAMES[sampler]}-{steps}",
                    format_nfe(speed["nfe"]),
                    speed["effective_nfe"],
                    f"{speed['seconds']:.2f}",
                    f"{batch_size / speed['seconds']:.1f}",
                    f"{speed['parameters'] / 1e6:.3f}M",
                    f"{speed['peak_rss_mb']:.0f} MB",
                    f"{100 * quality['class_accuracy']:.1f}%",
                    f"{quality['kid']:.4f} ± {quality['kid_std']:.4f}",
                    versus,
                ]
            )
            print(rows[-1], flush=True)
    headers = [
        "model",
        "sampler",
        "NFE per resolution",
        "effective NFE",
        f"s per guided batch of {batch_size}",
        "images/s",
        "parameters",
        "peak RSS",
        f"class acc. (n={n})",
        f"KID (n={n})",
        f"vs {'single resolution' if single else '1 stage of the same weights'}: images/s, class acc., KID",
    ]
    command = f"python -m fastdiff bench cascade --n {n} --batch {batch_size}" + (
        f" --sweep --sweep-n {sweep_n}" if with_sweep else ""
    )
    target = (
        f"Target: at least +{100 * TARGET_GAIN:.0f}% images/s at class accuracy within {TARGET_MATCH[0]:g} "
        f"points and KID within {100 * TARGET_MATCH[1] - 100:.0f}% of the single-resolution model."
    )
    return (
        f"Measured with `{command}` on {dataset_label(data)}, guidance w={GUIDANCE:g}, on: {machine()}. For scale, the "
        f"KID between {n} real test images and the rest of the test split is {real_kid:.4f}. {target}\n\n"
        + markdown_table(headers, rows)
        + "\n\n"
        + "\n".join(sections)
    )
