"""`fastdiff train`: train a model (plain, attention or cascade) into a run folder."""

from __future__ import annotations

from pathlib import Path

from ..config import PREDICTIONS, CascadeConfig, DiffusionConfig, ModelConfig, TrainConfig
from .common import (
    UsageError,
    add_config_flags,
    announce_device,
    checkpoints_options,
    config_from_args,
    device_options,
    progress_display,
    stop_on_interrupt,
)


def add_parser(commands) -> None:
    train = commands.add_parser("train", parents=[device_options(), checkpoints_options()], help="train a model")
    train.add_argument(
        "--data",
        required=True,
        help="cifar10, mnist, fashion-mnist, a CIFAR-10 .tar.gz, or a folder/.zip of class folders",
    )
    train.add_argument("--out", type=Path, required=True, help="run folder (checkpoint, log, previews)")
    train.add_argument("--attention", action="store_true", help="4-head self-attention at 8x8")
    train.add_argument(
        "--n-feat",
        type=int,
        default=ModelConfig.n_feat,
        help="channels at 32x32 and 16x16; the 8x8 bottleneck has twice as many (default %(default)s)",
    )
    train.add_argument(
        "--cascade", action="store_true", help="train a LowDiff cascade: one network for 8x8, 16x16 and 32x32"
    )
    add_config_flags(train, TrainConfig, skip=("precision",))  # --precision is one of the device options
    train.add_argument("--eval-n", type=int, default=250, help="samples per quality probe (default %(default)s)")
    train.add_argument(
        "--classifier",
        type=Path,
        default=Path("checkpoints/evaluator-cifar10"),
        help="the evaluator for --eval-every, a folder or shipped name (default %(default)s)",
    )
    train.add_argument(
        "--timesteps",
        type=int,
        default=DiffusionConfig.num_timesteps,
        help="diffusion timesteps T (default %(default)s)",
    )
    train.add_argument(
        "--schedule",
        default=DiffusionConfig.schedule,
        choices=("linear", "cosine"),
        help="noise schedule: linear (DDPM) or cosine (Nichol & Dhariwal 2021) (default %(default)s)",
    )
    train.add_argument(
        "--zero-terminal-snr",
        action="store_true",
        help="rescale the schedule so that its last timestep is pure noise (Lin et al. 2024; needs --prediction v)",
    )
    train.add_argument(
        "--prediction",
        default=None,
        choices=PREDICTIONS,
        help="what the network outputs: eps (the paper's), v or x0 (default: the --init checkpoint's, else v)",
    )
    train.add_argument("--resume", action="store_true", help="continue the run in --out")
    train.add_argument(
        "--overwrite", action="store_true", help="start over in an --out that holds a run (its files are removed)"
    )
    train.add_argument("--init", type=Path, default=None, help="warm start from a checkpoint folder or shipped name")
    train.set_defaults(run=run)


def run(args) -> None:
    from tqdm import tqdm

    from ..data import load_dataset
    from ..device import resolve_device
    from ..diffusion.sampling import MAX_SEED
    from ..nn.shipped import EVALUATOR_HINT, find_checkpoint
    from ..train.trainer import Trainer, clear_run, plot_run, run_files, setup_distributed, warm_start_prediction

    device = setup_distributed(args.device) or resolve_device(args.device)
    init = find_checkpoint(args.init, args.checkpoints) if args.init else None
    prediction = args.prediction or warm_start_prediction(init)
    model_config = ModelConfig(n_feat=args.n_feat, attention=args.attention, prediction=prediction)
    size = model_config.image_size
    cascade_config = CascadeConfig((size // 4, size // 2, size)) if args.cascade else None
    train_config = config_from_args(TrainConfig, args)
    dataset = load_dataset(args.data, "train", model_config.image_size)
    diffusion_config = DiffusionConfig(
        num_timesteps=args.timesteps, schedule=args.schedule, zero_terminal_snr=args.zero_terminal_snr
    )
    if args.resume and not (Path(args.out) / "training_state.safetensors").exists():
        raise UsageError(f"--resume: {args.out} has no training_state.safetensors to resume from")
    if args.resume and args.overwrite:
        raise UsageError("--resume continues the run in --out, --overwrite starts it over: give one")
    if not 0 <= args.seed <= MAX_SEED:
        raise UsageError(f"--seed must be between 0 and {MAX_SEED}, got {args.seed}")
    existing = run_files(args.out)
    if existing and not args.resume:
        if not args.overwrite:
            raise UsageError(
                f"--out {args.out} already holds a run ({', '.join(p.name for p in existing)}): "
                f"--resume continues it, --overwrite starts over"
            )
        clear_run(args.out)
    try:
        probe = None
        if args.eval_every:
            from ..eval.evaluate import QualityProbe

            probe = QualityProbe(
                find_checkpoint(args.classifier, args.checkpoints, EVALUATOR_HINT), args.data, args.eval_n, device
            )
        trainer = Trainer(
            dataset,
            args.out,
            train_config,
            model_config,
            diffusion_config,
            device,
            init=init,
            resume=args.resume,
            cascade_config=cascade_config,
            quality_probe=probe,
        )
    except ValueError as e:
        raise UsageError(str(e)) from e
    is_main = trainer.rank == 0
    if is_main and not args.quiet:
        announce_device(device, args.precision)
        if dataset.preparation:
            print(dataset.preparation)
    bar = tqdm(total=trainer.total_steps, initial=trainer.step, unit="step", disable=not is_main or args.quiet)
    trainer.on_event = progress_display(bar, is_main, args.quiet)
    stop_on_interrupt(bar, trainer)
    trainer.run()
    bar.close()
    if is_main:
        print(f"checkpoint: {args.out}  loss plot: {plot_run(args.out)}")
