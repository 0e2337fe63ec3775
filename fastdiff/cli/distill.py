"""`fastdiff distill`: distill a checkpoint into a few-step student that applies guidance in one pass."""

from __future__ import annotations

from pathlib import Path

from ..config import PREDICTIONS, DistillConfig, TrainConfig
from ..data import default_dataset
from ..diffusion.guidance import MAX_GUIDANCE
from .common import (
    UsageError,
    announce_device,
    checkpoints_options,
    device_options,
    progress_display,
    stop_on_interrupt,
)

STUDENT_OPTIONS = ("from_steps", "prediction", "guidance_max")  # what a student teacher sets itself


def add_parser(commands) -> None:
    distill = commands.add_parser(
        "distill",
        parents=[device_options(), checkpoints_options()],
        help="distill a checkpoint into a few-step student that applies guidance in one forward pass",
    )
    distill.add_argument(
        "--teacher",
        type=Path,
        default=Path("checkpoints/cifar10-base"),
        help="checkpoint folder or shipped name: a plain model, or a distilled student whose halving continues "
        "(default %(default)s)",
    )
    distill.add_argument("--out", type=Path, required=True, help="run folder (rounds, logs, the student)")
    distill.add_argument(
        "--data", default=default_dataset(), help="training images (default $FASTDIFF_DATA, else cifar10)"
    )
    distilled, defaults = DistillConfig(), TrainConfig()
    distill.add_argument(
        "--steps", type=int, default=distilled.steps, help="DDIM steps of the final student (default %(default)s)"
    )
    distill.add_argument(
        "--from-steps",
        type=int,
        default=None,
        help="DDIM steps the first halving round starts from (a power-of-two multiple of --steps; "
        f"default {distilled.from_steps}, a student teacher's own steps)",
    )
    distill.add_argument(
        "--prediction",
        default=None,
        choices=PREDICTIONS,
        help=f"the students' parameterization (default {distilled.prediction}, a student teacher's own)",
    )
    distill.add_argument(
        "--guidance-max",
        type=float,
        default=None,
        help=f"students learn w in [0, this] (default {distilled.guidance_max:g}, a student teacher's own)",
    )
    distill.add_argument(
        "--guidance-epochs",
        type=int,
        default=distilled.guidance_epochs,
        help="epochs of the guidance round (default %(default)s)",
    )
    distill.add_argument(
        "--round-epochs", type=int, default=distilled.round_epochs, help="epochs of each halving (default %(default)s)"
    )
    distill.add_argument(
        "--batch-size", type=int, default=defaults.batch_size, help="images per optimizer step (default %(default)s)"
    )
    distill.add_argument(
        "--lr", type=float, default=defaults.lr, help="Adam learning rate at each round's start (default %(default)s)"
    )
    distill.add_argument(
        "--ema-decay", type=float, default=defaults.ema_decay, help="EMA of the weights (default %(default)s)"
    )
    distill.add_argument(
        "--preview-every", type=int, default=0, help="epochs between denoising previews (0 = never; default 0)"
    )
    distill.add_argument(
        "--seed",
        type=int,
        default=defaults.seed,
        help="the first round's seed; each later round adds 1 (default %(default)s)",
    )
    distill.add_argument("--resume", action="store_true", help="continue the run in --out")
    distill.set_defaults(run=run)


def run(args) -> None:
    from tqdm import tqdm

    from ..data import load_dataset
    from ..device import resolve_device
    from ..nn.checkpoint import read_config
    from ..nn.shipped import find_checkpoint
    from ..train.distill import Distillation, plot_rounds

    teacher = find_checkpoint(args.teacher, args.checkpoints)
    teacher_config = read_config(teacher)[0]
    if teacher_config.guidance_embedding:  # a student: its halving goes on from its own settings
        given = [f"--{name.replace('_', '-')}" for name in STUDENT_OPTIONS if getattr(args, name) is not None]
        if given:
            raise UsageError(f"{', '.join(given)}: --teacher {args.teacher} is a distilled student, which sets them")
        args.from_steps, args.prediction = teacher_config.distilled_steps, teacher_config.prediction
        args.guidance_max = teacher_config.guidance_range[1]
    defaults = DistillConfig()
    for name in STUDENT_OPTIONS:
        if getattr(args, name) is None:
            setattr(args, name, getattr(defaults, name))
    if args.guidance_epochs < 1 or args.round_epochs < 1 or args.batch_size < 1 or not args.lr > 0:
        raise UsageError("--guidance-epochs, --round-epochs, --batch-size and --lr must be positive")
    if not 2 <= args.guidance_max <= MAX_GUIDANCE:
        raise UsageError(
            f"--guidance-max must be between 2 (the default w) and {MAX_GUIDANCE:g}, got {args.guidance_max:g}"
        )
    device = resolve_device(args.device)
    config = DistillConfig(
        args.steps, args.from_steps, args.prediction, args.guidance_max, args.guidance_epochs, args.round_epochs
    )
    train_config = TrainConfig(
        batch_size=args.batch_size,
        lr=args.lr,
        precision=args.precision,
        seed=args.seed,
        ema_decay=args.ema_decay,
        preview_every=args.preview_every,
    )
    dataset = load_dataset(args.data, "train", teacher_config.image_size, teacher_config.image_channels)
    distillation = Distillation(teacher, args.out, dataset, config, train_config, device, args.resume)
    if not args.quiet:
        announce_device(device, args.precision)
        if dataset.preparation:
            print(dataset.preparation)
    bar = tqdm(unit="step", disable=args.quiet)
    distillation.on_event = progress_display(bar, quiet=args.quiet)
    stop_on_interrupt(bar, distillation)
    finished = distillation.run()
    bar.close()
    state = "student" if finished else "stopped; continue with --resume. Latest finished round's student"
    print(f"{state}: {args.out}  loss plot: {plot_rounds(args.out)}")
