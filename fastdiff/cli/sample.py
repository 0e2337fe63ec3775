"""`fastdiff sample`: a grid of images (and optionally the denoising as a GIF) from a checkpoint."""

from __future__ import annotations

from pathlib import Path

from ..config import ModelConfig
from ..diffusion.samplers import SAMPLERS
from ..diffusion.sampling import Plan
from .common import UsageError, announce_device, check_output, checkpoints_options, device_options, int_list


def add_parser(commands) -> None:
    sample = commands.add_parser(
        "sample", parents=[device_options(), checkpoints_options()], help="generate a grid of images"
    )
    sample.add_argument(
        "--checkpoint",
        type=Path,
        default=Path("checkpoints/cifar10-base"),
        help="checkpoint folder or shipped name (default %(default)s)",
    )
    sample.add_argument(
        "--class", dest="class_name", default="random", help="class name, index or 'random' (default random)"
    )
    sample.add_argument("--sampler", default="ddim", help=f"one of {', '.join(SAMPLERS)} (default ddim)")
    sample.add_argument(
        "--steps",
        type=int,
        default=None,
        help="model evaluations (default: all T for ddpm, 50 for ddim, 20 for dpm++ and dpm++sde)",
    )
    sample.add_argument("--guidance", type=float, default=2.0, help="classifier-free guidance w (default 2)")
    sample.add_argument("--eta", type=float, default=0.0, help="DDIM noise, 0 (deterministic) to 1 (default 0)")
    sample.add_argument("--n", type=int, default=16, help="number of images (default 16)")
    sample.add_argument("--seed", type=int, default=0, help="image i uses seed + i (default 0)")
    sample.add_argument(
        "--out", type=Path, default=Path("samples.png"), help="the grid's image file (default %(default)s)"
    )
    sample.add_argument("--gif", type=Path, default=None, help="also write the denoising as a GIF")
    sample.add_argument(
        "--stages",
        type=int,
        default=None,
        help="LowDiff cascade stages: 1 (32), 2 (16->32) or 3 (8->16->32); 2 and 3 need a cascade checkpoint",
    )
    sample.add_argument(
        "--stage-steps", default=None, help="with --stages: timestep-grid steps per stage, lowest first (e.g. 50,35,25)"
    )
    sample.add_argument(
        "--truncate",
        default=None,
        help="with --stages: steps run per stage before handing over, all but the last (e.g. 27,19)",
    )
    sample.add_argument(
        "--paper-stages",
        action="store_true",
        help="with --stages: the paper's stage fractions instead of the checkpoint's swept settings",
    )
    sample.set_defaults(run=run)


def image_suffixes() -> set[str]:
    """File suffixes PIL can write."""
    from PIL import Image

    return {suffix for suffix, kind in Image.registered_extensions().items() if kind in Image.SAVE}


def cascade_stages(args, model, schedule):
    """The --stages settings: default_stages with --sampler for every stage, then --stage-steps and
    --truncate if given."""
    from ..diffusion.cascade import default_stages

    if args.steps is not None:
        raise UsageError("with --stages, give step counts per stage with --stage-steps")
    stages = default_stages(args.stages, model, schedule, args.sampler, paper=args.paper_stages)
    if args.stage_steps:
        steps = int_list(args.stage_steps)
        if len(steps) != len(stages):
            raise UsageError(f"--stage-steps needs {len(stages)} numbers, got {len(steps)}")
        for stage, count in zip(stages, steps):
            stage.num_steps = count
    if args.truncate:
        points = int_list(args.truncate)
        if len(points) != len(stages) - 1:
            raise UsageError(
                f"--truncate needs {len(stages) - 1} numbers (one per stage but the last), got {len(points)}"
            )
        for stage, point in zip(stages, points):
            stage.truncate = point
    return stages


def progress_description(plan: Plan, config: ModelConfig) -> str:
    """The progress bar's name: the sampler as given, or for a step-distilled student the grid it runs."""
    if config.distilled_steps:
        return f"distilled ({plan.sampler}, {plan.num_steps} step{'s' if plan.num_steps > 1 else ''})"
    return plan.sampler


def run(args) -> None:
    import torch.nn.functional as F
    from tqdm import tqdm

    from ..device import resolve_device, resolve_precision
    from ..diffusion.sampling import check_seed, class_labels, is_frame, make_plan, sample_steps
    from ..diffusion.schedule import NoiseSchedule
    from ..images import grid, save_animation, save_image
    from ..nn.checkpoint import load_model
    from ..nn.shipped import find_checkpoint

    if not 1 <= args.n <= 1024:
        raise UsageError(f"--n must be between 1 and 1024, got {args.n}")
    if args.stages is None and (args.stage_steps or args.truncate or args.paper_stages):
        raise UsageError("--stage-steps, --truncate and --paper-stages need --stages")
    check_seed(args.seed, args.n)
    check_output(args.out, "--out", image_suffixes())
    if args.gif:
        check_output(args.gif, "--gif", {".gif", ".mp4"})
    device = resolve_device(args.device)
    precision = resolve_precision(args.precision, device)
    model, diffusion_config, _ = load_model(find_checkpoint(args.checkpoint, args.checkpoints), device)
    schedule = NoiseSchedule(diffusion_config)
    config = model.config
    labels = class_labels(args.class_name, config.class_names if config.num_classes else (), args.n, args.seed)
    stages = 1 if args.stages is None else cascade_stages(args, model, schedule)
    plan = make_plan(model, schedule, args.sampler, args.steps, args.guidance, args.eta, stages)
    seeds = list(range(args.seed, args.seed + args.n))
    size = model.config.image_size
    frames = []
    if not args.quiet:
        announce_device(device, args.precision)
    with tqdm(total=plan.nfe, desc=progress_description(plan, config), unit="step", disable=args.quiet) as bar:
        for step in sample_steps(model, schedule, labels, seeds, plan, precision):
            bar.update()
            if args.gif and is_frame(step, 40):
                frames.append(grid(F.interpolate(step.x0, size=(size, size)), scale=2))  # low-res stages too
    images = step.x_t
    save_image(grid(images), args.out)
    print(f"wrote {args.out}")
    if args.gif:
        save_animation(frames, args.gif)
        print(f"wrote {args.gif}")
