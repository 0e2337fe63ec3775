"""The one way to sample: `make_plan` checks the settings once against the model, `sample_steps` runs
the plan as a stream of steps (plain sampling is a plan of one stage, a LowDiff cascade one of two or
three) and `sample` drains it; the final images are always the last step's x_t. Used by the CLI, the
app, the trainer's previews, the evaluator and the benchmarks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from ..nn.cascade import upsample_condition
from ..nn.unet import UNet
from .cascade import Conditioned, Stage, check_stages, default_stages
from .guidance import check_guidance, guided_denoiser
from .rng import ImageRNG
from .samplers import SAMPLER_NAMES, SAMPLERS, Step, check_sampler
from .schedule import NoiseSchedule


@dataclass(frozen=True)
class Plan:
    """Checked settings of one sampling run."""

    sampler: str  # key of SAMPLERS (a cascade's stages may each name their own)
    num_steps: int  # plain steps asked for; a cascade's stages are scaled to them
    guidance: float  # classifier-free guidance weight w
    eta: float  # DDIM noise (0 for the other samplers)
    stages: list[Stage]  # one stage (plain sampling at full size) or a cascade's stages, lowest first

    @property
    def configuration(self) -> tuple[str, int, float, int]:
        """(sampler, steps, guidance, stages), as eval.json records a configuration."""
        return self.sampler, self.num_steps, self.guidance, len(self.stages)

    @property
    def nfe(self) -> int:
        """Model evaluations of the whole run: every stage's, each up to its truncation point."""
        return sum(stage.nfe for stage in self.stages)


@dataclass(kw_only=True)
class RunStep(Step):
    """A Step of the whole run: index and num_steps count over all stages, so progress bars and frame
    picking need not know about stages."""

    stage: int  # 0-based stage number
    resolution: int  # image side of this stage
    stage_index: int  # 0-based step within the stage
    stage_steps: int  # model evaluations of this stage


def make_plan(
    model: UNet,
    schedule: NoiseSchedule,
    sampler: str = "ddim",
    num_steps: int | None = None,
    guidance: float = 2.0,
    eta: float = 0.0,
    stages: int | list[Stage] = 1,
    paper_stages: bool = False,
) -> Plan:
    """Check every setting against the model; raises ValueError with a one-line message. stages: a
    count (1 = plain sampling) for the default stages scaled to num_steps (the checkpoint's swept
    settings, or with paper_stages the paper's fractions), or explicit stages. A step-distilled model's
    default step count is the one it was distilled for."""
    if num_steps is None and model.config.distilled_steps:
        num_steps = model.config.distilled_steps
    num_steps = check_sampler(sampler, num_steps, eta, schedule.num_timesteps)
    check_distilled_grid(model, sampler, num_steps, eta)
    check_guidance(guidance, model)
    if isinstance(stages, int):
        stages = default_stages(stages, model, schedule, sampler, num_steps, paper_stages)
    check_stages(model, stages, eta, schedule.num_timesteps)
    return Plan(sampler, num_steps, float(guidance), float(eta), list(stages))


def check_distilled_grid(model: UNet, sampler: str, num_steps: int, eta: float) -> None:
    """A step-distilled student learned one deterministic grid: DDIM with eta 0 at its step count.
    Raises ValueError with a one-line message for any other sampler, step count or eta."""
    steps = model.config.distilled_steps
    if steps and (sampler != "ddim" or num_steps != steps or eta):
        asked = f"{SAMPLER_NAMES[sampler]} with {num_steps} steps" + (f" and eta {eta:g}" if eta else "")
        raise ValueError(
            f"this checkpoint was distilled for DDIM with {steps} steps (eta 0), the only grid it was trained on; "
            f"got {asked}"
        )


def sample_steps(
    model: UNet,
    schedule: NoiseSchedule,
    class_labels: torch.Tensor | None,
    seeds: list[int],
    plan: Plan,
    precision: str = "fp32",
    cuda_graph: bool = True,
    start_noise: torch.Tensor | None = None,
) -> Iterator[RunStep]:
    """LowDiff Algorithm 2 (one stage: plain sampling) for len(seeds) images, image i from seeds[i]:
    start from seeded noise at the first stage's resolution, run its sampler with guidance up to its
    truncation point, upsample the partially denoised x_t as the next stage's condition, repeat.
    cuda_graph: on CUDA, replay each stage's guided forward from a CUDA graph (guidance.py).
    start_noise: the first stage's x_T in place of the seeds' (noise_between's); the seeds still draw
    every later noise."""
    device = next(model.parameters()).device
    schedule, rng = schedule.to(device), ImageRNG(seeds, device)
    total = plan.nfe
    index, condition = 0, None
    for number, stage in enumerate(plan.stages):
        x_T = rng.randn(model.config.image_channels, stage.resolution, stage.resolution)
        if number == 0 and start_noise is not None:
            x_T = start_noise.to(device)
        network = model if condition is None else Conditioned(model, condition)
        denoiser = guided_denoiser(network, class_labels, plan.guidance, precision, cuda_graph)
        steps = SAMPLERS[stage.sampler](
            denoiser,
            schedule,
            x_T,
            stage.num_steps,
            eta=plan.eta,
            rng=rng,
            t_start=stage.t_start,
            prediction=model.config.prediction,
        )
        for stage_index, step in zip(range(stage.nfe), steps):  # stops at the truncation point
            yield RunStep(
                index,
                total,
                step.t,
                step.x_t,
                step.x0,
                step.eps,
                stage=number,
                resolution=stage.resolution,
                stage_index=stage_index,
                stage_steps=stage.nfe,
            )
            index += 1
        if number + 1 < len(plan.stages):
            # The partially denoised x_t, at the grid's next timestep, conditions the next stage.
            condition = upsample_condition(step.x_t, plan.stages[number + 1].resolution)


def slerp(a: torch.Tensor, b: torch.Tensor, fraction: float) -> torch.Tensor:
    """Spherical interpolation per image (Shoemake 1985), a at fraction 0, b at 1: the point that
    divides the arc between them at fraction, so that noise moved along it keeps the norm of a Gaussian
    sample (a straight line between two independent ones passes at about 0.71 of it). a, b: (B, ...)."""
    a_flat, b_flat = a.flatten(1).double(), b.flatten(1).double()
    cos = (a_flat * b_flat).sum(1) / (a_flat.norm(dim=1) * b_flat.norm(dim=1))
    theta = cos.clamp(-1, 1).acos()
    sin = theta.sin()
    parallel = sin < 1e-6  # (nearly) the same direction: the line is the arc
    weight_a = torch.where(parallel, 1 - fraction, ((1 - fraction) * theta).sin() / sin)
    weight_b = torch.where(parallel, fraction, (fraction * theta).sin() / sin)
    shape = (-1,) + (1,) * (a.dim() - 1)
    return (weight_a.view(shape) * a.double() + weight_b.view(shape) * b.double()).to(a.dtype)


def noise_between(seeds: list[int], other_seeds: list[int], fraction: float, *shape: int) -> torch.Tensor:
    """(len(seeds), *shape) starting noise on the arc from the seeds' noise (fraction 0) to the other
    seeds' (1), image i between seeds[i] and other_seeds[i]."""
    return slerp(ImageRNG(seeds).randn(*shape), ImageRNG(other_seeds).randn(*shape), fraction)


MAX_IMAGES = 16  # the most images of one interactive request: the app's and the web page's grids
MAX_SEED = 2**31 - 1  # seeds stay signed 32-bit integers, which every tool (and a browser field) holds exactly


def check_seed(seed: int, num_images: int) -> None:
    """Raise ValueError with a one-line message unless the seeds seed .. seed + num_images - 1 are usable."""
    if not 0 <= seed <= MAX_SEED - num_images:
        raise ValueError(f"seed must be between 0 and {MAX_SEED - num_images} for {num_images} images, got {seed}")


def final_images(steps: Iterator[Step]) -> torch.Tensor:
    """Run steps to the end; the last step's x_t, (B, C, H, W) in [-1, 1]."""
    *_, last = steps
    return last.x_t


def sample(
    model: UNet,
    schedule: NoiseSchedule,
    class_labels: torch.Tensor | None,
    seeds: list[int],
    plan: Plan,
    precision: str = "fp32",
) -> torch.Tensor:
    """The final images of sample_steps."""
    return final_images(sample_steps(model, schedule, class_labels, seeds, plan, precision))


def is_frame(step: Step, num_frames: int) -> bool:
    """Whether a step is one of about num_frames evenly spaced frames of an animation (the last always)."""
    return step.index % max(1, step.num_steps // num_frames) == 0 or step.index + 1 == step.num_steps


def class_labels(spec: str, class_names: tuple[str, ...], n: int, seed: int) -> torch.Tensor | None:
    """'random' (one seeded draw per image), a class name or an index -> (n,) labels; None for an
    unconditional model. Raises ValueError with a one-line message for anything else."""
    if not class_names:
        if spec not in ("random", ""):
            raise ValueError("this checkpoint is unconditional: it has no classes to choose from")
        return None
    if spec == "random":
        return torch.randint(len(class_names), (n,), generator=torch.Generator().manual_seed(seed))
    if spec.isdigit() and int(spec) < len(class_names):
        return torch.full((n,), int(spec))
    if spec.lower() not in class_names:
        raise ValueError(f"unknown class {spec!r}: choose one of {', '.join(class_names)} or random")
    return torch.full((n,), class_names.index(spec.lower()))
