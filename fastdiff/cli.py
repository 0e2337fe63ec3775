"""Command line: `python -m fastdiff sample|train ...`. Bad input exits with status 2 and one line."""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import typing
from pathlib import Path

from .config import PREDICTIONS, CascadeConfig, DiffusionConfig, DistillConfig, ModelConfig, TrainConfig
from .data import DataError, default_dataset
from .device import AUTO_PRECISION, PRECISIONS, keep_freed_memory
from .diffusion.guidance import MAX_GUIDANCE
from .diffusion.samplers import SAMPLERS
from .nn.checkpoint import CheckpointError


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def int_list(spec: str) -> list[int]:
    """'27,19' -> [27, 19]."""
    try:
        return [int(part) for part in spec.split(",")]
    except ValueError:
        raise UsageError(f"expected comma-separated integers, got {spec!r}") from None


def check_output(path: Path, flag: str, suffixes: set[str]) -> None:
    """Raise UsageError unless path can be written as one of suffixes: checked before any work."""
    if path.is_dir():
        raise UsageError(f"{flag} {path}: is a folder; give a file name such as {path / ('out' + min(suffixes))}")
    if not path.parent.is_dir():
        raise UsageError(f"{flag} {path}: the folder {path.parent} does not exist")
    if path.suffix.lower() not in suffixes:
        raise UsageError(f"{flag} {path}: unknown file type {path.suffix!r}; use one of {', '.join(sorted(suffixes))}")


def image_suffixes() -> set[str]:
    """File suffixes PIL can write."""
    from PIL import Image

    return {suffix for suffix, kind in Image.registered_extensions().items() if kind in Image.SAVE}


def add_config_flags(parser: argparse.ArgumentParser, config_class, skip: tuple[str, ...] = ()) -> None:
    """One --flag per field of a config dataclass (batch_size -> --batch-size) with the field's default
    and metadata help; a bool field is an off-by-default switch."""
    types = typing.get_type_hints(config_class)
    for spec in dataclasses.fields(config_class):
        if spec.name in skip:
            continue
        flag = "--" + spec.name.replace("_", "-")
        if types[spec.name] is bool:
            parser.add_argument(flag, action="store_true", help=spec.metadata["help"])
        else:
            text = spec.metadata["help"] + " (default %(default)s)"
            parser.add_argument(flag, type=types[spec.name], default=spec.default, help=text)


def config_from_args(config_class, args: argparse.Namespace):
    """The config dataclass whose fields are the parsed flags of the same names."""
    return config_class(**{spec.name: getattr(args, spec.name) for spec in dataclasses.fields(config_class)})


def cascade_stages(args, model, schedule):
    """The --stages settings: default_stages with --sampler for every stage, then --stage-steps and
    --truncate if given."""
    from .diffusion.cascade import default_stages

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


def cmd_sample(args) -> None:
    import torch.nn.functional as F
    from tqdm import tqdm

    from .device import resolve_device, resolve_precision
    from .diffusion.sampling import check_seed, class_labels, is_frame, make_plan, sample_steps
    from .diffusion.schedule import NoiseSchedule
    from .images import grid, save_animation, save_image
    from .nn.checkpoint import load_model

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
    model, diffusion_config, _ = load_model(args.checkpoint, device)
    schedule = NoiseSchedule(diffusion_config)
    config = model.config
    labels = class_labels(args.class_name, config.class_names if config.num_classes else (), args.n, args.seed)
    stages = 1 if args.stages is None else cascade_stages(args, model, schedule)
    plan = make_plan(model, schedule, args.sampler, args.steps, args.guidance, args.eta, stages)
    seeds = list(range(args.seed, args.seed + args.n))
    size = model.config.image_size
    frames = []
    with tqdm(desc=f"{args.sampler}", unit="step", disable=args.quiet) as bar:
        for step in sample_steps(model, schedule, labels, seeds, plan, precision):
            bar.total = step.num_steps
            bar.update()
            if args.gif and is_frame(step, 40):
                frames.append(grid(F.interpolate(step.x0, size=(size, size)), scale=2))  # low-res stages too
    images = step.x_t
    save_image(grid(images), args.out)
    print(f"wrote {args.out}")
    if args.gif:
        save_animation(frames, args.gif)
        print(f"wrote {args.gif}")


def numbers(record: dict) -> str:
    """An epoch record for the terminal: the learning rate in scientific notation, the rest to 4 places."""
    return ", ".join(f"{k}: {v:.2e}" if k == "lr" else f"{k}: {round(v, 4)}" for k, v in record.items())


def cmd_train(args) -> None:
    from tqdm import tqdm

    from .data import load_dataset
    from .device import resolve_device
    from .diffusion.sampling import MAX_SEED
    from .train.trainer import Trainer, clear_run, plot_run, run_files, setup_distributed, warm_start_prediction

    device = setup_distributed(args.device) or resolve_device(args.device)
    prediction = args.prediction or warm_start_prediction(args.init)
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
            from .eval.evaluate import QualityProbe

            probe = QualityProbe(args.classifier, args.data, args.eval_n, device)
        trainer = Trainer(
            dataset,
            args.out,
            train_config,
            model_config,
            diffusion_config,
            device,
            init=args.init,
            resume=args.resume,
            cascade_config=cascade_config,
            quality_probe=probe,
        )
    except ValueError as e:
        raise UsageError(str(e)) from e
    is_main = trainer.rank == 0
    bar = tqdm(total=trainer.total_steps, initial=trainer.step, unit="step", disable=not is_main or args.quiet)
    trainer.on_event = progress_display(bar, is_main, args.quiet)
    stop_on_interrupt(bar, trainer)
    trainer.run()
    bar.close()
    if is_main:
        print(f"checkpoint: {args.out}  loss plot: {plot_run(args.out)}")


def progress_display(bar, is_main: bool = True, quiet: bool = False):
    """A training event handler that advances the progress bar and prints warnings, and unless quiet,
    epochs and previews."""

    def show(event):
        if not is_main:
            return
        if event.kind == "step":
            bar.update()
            bar.set_postfix(epoch=event.epoch + 1, loss=f"{event.data['loss']:.4f}")
        elif event.kind == "warning" or (event.kind in ("preview", "epoch") and not quiet):
            bar.write(
                f"{event.kind}: " + str(event.data.get("message") or event.data.get("path") or numbers(event.data))
            )

    return show


def stop_on_interrupt(bar, run) -> None:
    """The first Ctrl-C ends the run (a Trainer or a Distillation) after its step, with a checkpoint;
    a second one kills it."""
    signal.signal(
        signal.SIGINT,
        lambda *_: (
            bar.write("stopping after this step..."),
            run.request_stop(),
            signal.signal(signal.SIGINT, signal.SIG_DFL),
        ),
    )


def cmd_distill(args) -> None:
    from tqdm import tqdm

    from .data import load_dataset
    from .device import resolve_device
    from .nn.checkpoint import read_config
    from .train.distill import Distillation, plot_rounds

    teacher_config = read_config(args.teacher)[0]
    student_options = ("from_steps", "prediction", "guidance_max")
    if teacher_config.guidance_embedding:  # a student: its halving goes on from its own settings
        given = [f"--{name.replace('_', '-')}" for name in student_options if getattr(args, name) is not None]
        if given:
            raise UsageError(f"{', '.join(given)}: --teacher {args.teacher} is a distilled student, which sets them")
        args.from_steps, args.prediction = teacher_config.distilled_steps, teacher_config.prediction
        args.guidance_max = teacher_config.guidance_range[1]
    defaults = DistillConfig()
    for name in student_options:
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
    distillation = Distillation(args.teacher, args.out, dataset, config, train_config, device, args.resume)
    bar = tqdm(unit="step", disable=args.quiet)
    distillation.on_event = progress_display(bar, quiet=args.quiet)
    stop_on_interrupt(bar, distillation)
    finished = distillation.run()
    bar.close()
    state = "student" if finished else "stopped; continue with --resume. Latest finished round's student"
    print(f"{state}: {args.out}  loss plot: {plot_rounds(args.out)}")


def cmd_bench(args) -> None:
    if args.what == "gpu":
        from .bench.gpu import check
        from .device import resolve_device

        check(args.assets, resolve_device())
        return
    if args.what != "cascade":
        from .bench.runner import run

        run(args.what, args.assets)
        return
    from .bench.cascade import compare

    if args.n < 2 or args.sweep_n < 2 or args.batch < 1:
        raise UsageError("--n and --sweep-n must be at least 2, --batch at least 1")
    args.assets.mkdir(parents=True, exist_ok=True)
    single = args.checkpoints / "cifar10-base"
    text = "# Cascade vs single resolution\n\n" + compare(
        args.checkpoints / "cifar10-cascade",
        single if (single / "config.json").exists() else None,
        args.classifier,
        args.data,
        args.n,
        args.sweep,
        args.sweep_n,
        args.batch,
    )
    (args.assets / "cascade.md").write_text(text)
    print(text)


def cmd_eval(args) -> None:
    import json

    from .device import resolve_device, resolve_precision

    device = resolve_device(args.device)
    if args.action == "train-classifier":
        from .data import load_dataset
        from .eval.classifier import train_classifier

        accuracy = train_classifier(
            load_dataset(args.data, "train"),
            load_dataset(args.data, "test"),
            args.classifier,
            args.width,
            args.epochs,
            lr=args.lr,
            device=device,
            precision=resolve_precision(args.precision, device),
            init=args.init,
        )
        print(f"test accuracy {100 * accuracy:.2f}%, saved to {args.classifier}")
        return
    from .eval.evaluate import ROW_HEADERS, evaluate, row, sweep
    from .report import markdown_table

    if args.action == "sweep":
        print(sweep(Path("checkpoints"), args.classifier, args.data, args.n, args.assets, device))
        return
    if args.n < 2:
        raise UsageError(f"--n must be at least 2, got {args.n}")
    if args.action == "diagnose":
        from .eval.diagnose import diagnose

        diagnose(args.checkpoint, args.classifier, args.data, args.n, args.guidance, args.seed, args.assets, device)
        print(f"wrote {args.assets / 'diagnosis.md'} and {args.assets / 'diagnosis.png'}")
        return
    result = evaluate(
        args.checkpoint,
        args.classifier,
        args.data,
        args.sampler,
        args.steps,
        args.guidance,
        args.n,
        args.stages,
        args.seed,
        device,
        with_fid=args.metric == "fid",
    )
    print(json.dumps(result, indent=2))
    print(markdown_table(ROW_HEADERS, [row(f"{args.sampler}-{args.steps}, w={args.guidance}", result)]))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


def cmd_app(args) -> None:
    from .app.ui import main as app_main

    app_main(args.app_args)


def cmd_plot(args) -> None:
    from .train.trainer import plot_run

    print(plot_run(args.folder))


def build_parser(prog: str = "python -m fastdiff") -> Parser:
    parser = Parser(prog=prog, description="FastDiff: fast class-conditional diffusion.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    device = Parser(add_help=False)
    device.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    device.add_argument(
        "--precision",
        default="auto",
        choices=PRECISIONS,
        help=f"autocast precision; auto = {AUTO_PRECISION['cuda']} on CUDA, bf16 on a bf16-capable CPU, else fp32",
    )
    device.add_argument("--quiet", action="store_true", help="no progress bar or epoch lines (warnings still print)")

    sample = commands.add_parser("sample", parents=[device], help="generate a grid of images")
    sample.add_argument("--checkpoint", type=Path, default=Path("checkpoints/cifar10-base"))
    sample.add_argument("--class", dest="class_name", default="random", help="class name, index or 'random'")
    sample.add_argument("--sampler", default="ddim", help=f"one of {', '.join(SAMPLERS)} (default ddim)")
    sample.add_argument(
        "--steps",
        type=int,
        default=None,
        help="model evaluations (default: all T for ddpm, 50 for ddim, 20 for dpm++ and dpm++sde)",
    )
    sample.add_argument("--guidance", type=float, default=2.0, help="classifier-free guidance w (default 2)")
    sample.add_argument("--eta", type=float, default=0.0, help="DDIM noise, 0 (deterministic) to 1")
    sample.add_argument("--n", type=int, default=16, help="number of images (default 16)")
    sample.add_argument("--seed", type=int, default=0, help="image i uses seed + i")
    sample.add_argument("--out", type=Path, default=Path("samples.png"))
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
    sample.set_defaults(run=cmd_sample)

    train = commands.add_parser("train", parents=[device], help="train a model")
    train.add_argument(
        "--data",
        required=True,
        help="cifar10, mnist, fashion-mnist, a CIFAR-10 .tar.gz, or a folder/.zip of class folders",
    )
    train.add_argument("--out", type=Path, required=True, help="run folder (checkpoint, log, previews)")
    train.add_argument("--attention", action="store_true", help="4-head self-attention at 8x8")
    train.add_argument("--n-feat", type=int, default=ModelConfig.n_feat)
    train.add_argument(
        "--cascade", action="store_true", help="train a LowDiff cascade: one network for 8x8, 16x16 and 32x32"
    )
    add_config_flags(train, TrainConfig, skip=("precision",))  # --precision is one of the device options
    train.add_argument("--eval-n", type=int, default=250, help="samples per quality probe")
    train.add_argument(
        "--classifier", type=Path, default=Path("checkpoints/evaluator-cifar10"), help="the evaluator for --eval-every"
    )
    train.add_argument("--timesteps", type=int, default=DiffusionConfig.num_timesteps)
    train.add_argument("--schedule", default=DiffusionConfig.schedule, choices=("linear", "cosine"))
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
    train.add_argument("--init", type=Path, default=None, help="warm start from a checkpoint folder")
    train.set_defaults(run=cmd_train)

    distill = commands.add_parser(
        "distill",
        parents=[device],
        help="distill a checkpoint into a few-step student that applies guidance in one forward pass",
    )
    distill.add_argument(
        "--teacher",
        type=Path,
        default=Path("checkpoints/cifar10-base"),
        help="checkpoint folder: a plain model, or a distilled student whose halving continues",
    )
    distill.add_argument("--out", type=Path, required=True, help="run folder (rounds, logs, the student)")
    distill.add_argument(
        "--data", default=default_dataset(), help="training images (default $FASTDIFF_DATA, else cifar10)"
    )
    distilled, defaults = DistillConfig(), TrainConfig()
    distill.add_argument("--steps", type=int, default=distilled.steps, help="DDIM steps of the final student")
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
    distill.add_argument("--guidance-epochs", type=int, default=distilled.guidance_epochs)
    distill.add_argument("--round-epochs", type=int, default=distilled.round_epochs, help="epochs of each halving")
    distill.add_argument("--batch-size", type=int, default=defaults.batch_size)
    distill.add_argument("--lr", type=float, default=defaults.lr)
    distill.add_argument("--ema-decay", type=float, default=defaults.ema_decay)
    distill.add_argument("--preview-every", type=int, default=0, help="epochs (0 = never)")
    distill.add_argument("--seed", type=int, default=defaults.seed)
    distill.add_argument("--resume", action="store_true", help="continue the run in --out")
    distill.set_defaults(run=cmd_distill)

    app = commands.add_parser(
        "app",
        add_help=False,
        help="run the Gradio app (the same as python app.py; fastdiff app --help lists its options)",
    )
    app.add_argument("app_args", nargs=argparse.REMAINDER)
    app.set_defaults(run=cmd_app)

    plot = commands.add_parser("plot", help="draw a run's loss and learning-rate curves (loss.png)")
    plot.add_argument("folder", type=Path, help="the run folder (holding log.jsonl)")
    plot.set_defaults(run=cmd_plot)

    evaluation = commands.add_parser("eval", parents=[device], help="sample quality with the project's classifier")
    evaluation.add_argument(
        "action",
        nargs="?",
        default="run",
        choices=("run", "train-classifier", "sweep", "diagnose"),
        help="run (default): evaluate one configuration; train-classifier; sweep: the quality tables; "
        "diagnose: why some samples are noise textures, and samplers compared on them (assets/diagnosis.md)",
    )
    evaluation.add_argument("--checkpoint", type=Path, default=Path("checkpoints/cifar10-base"))
    evaluation.add_argument("--classifier", type=Path, default=Path("checkpoints/evaluator-cifar10"))
    evaluation.add_argument(
        "--data", default=default_dataset(), help="real images (test split; default $FASTDIFF_DATA, else cifar10)"
    )
    evaluation.add_argument("--sampler", default="ddim", choices=tuple(SAMPLERS))
    evaluation.add_argument("--steps", type=int, default=50)
    evaluation.add_argument("--guidance", type=float, default=2.0)
    evaluation.add_argument("--stages", type=int, default=1, help="cascade stages (1 = plain sampling)")
    evaluation.add_argument("--n", type=int, default=1000, help="samples (balanced over classes)")
    evaluation.add_argument("--seed", type=int, default=0)
    evaluation.add_argument(
        "--metric",
        choices=("classifier", "fid"),
        default="classifier",
        help="fid adds standard FID (needs torch-fidelity or clean-fid)",
    )
    evaluation.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    evaluation.add_argument("--assets", type=Path, default=Path("assets"))
    evaluation.add_argument("--width", type=int, default=32, help="train-classifier: network width")
    evaluation.add_argument("--epochs", type=int, default=16, help="train-classifier: epochs")
    evaluation.add_argument("--lr", type=float, default=0.2, help="train-classifier: peak learning rate")
    evaluation.add_argument(
        "--init", type=Path, default=None, help="train-classifier: continue from this classifier (e.g. the saved one)"
    )
    evaluation.set_defaults(run=cmd_eval)

    bench = commands.add_parser("bench", help="measure sampling and training speed, write tables to assets/")
    bench.add_argument(
        "what",
        choices=("sample", "train", "profile", "classroom", "all", "cascade", "gpu"),
        help="profile: op shares and FLOP/s of a guided forward pass; classroom: the replay's and the 2D lab's "
        "costs; cascade: single resolution vs 2- and "
        "3-stage cascades, speed and quality; gpu: the GPU check "
        "(CUDA graph vs plain sampling, training per precision, same-seed difference to the CPU)",
    )
    bench.add_argument("--assets", type=Path, default=Path("assets"), help="where the tables go")
    bench.add_argument(
        "--checkpoints",
        type=Path,
        default=Path("checkpoints"),
        help="cascade: the folder holding cifar10-cascade (and cifar10-base)",
    )
    bench.add_argument(
        "--classifier", type=Path, default=Path("checkpoints/evaluator-cifar10"), help="cascade: the evaluator"
    )
    bench.add_argument("--batch", type=int, default=64, help="cascade: images per timed batch")
    bench.add_argument(
        "--data",
        default=default_dataset(),
        help="cascade: real images (test split; default $FASTDIFF_DATA, else cifar10)",
    )
    bench.add_argument("--n", type=int, default=500, help="cascade: samples per quality measurement")
    bench.add_argument(
        "--sweep",
        action="store_true",
        help="cascade: first sweep the first stage's truncation point and the final stage's steps",
    )
    bench.add_argument("--sweep-n", type=int, default=200, help="cascade: samples per sweep candidate")
    bench.set_defaults(run=cmd_bench)
    return parser


def main(argv: list[str] | None = None, prog: str = "python -m fastdiff") -> int:
    argv = sys.argv[1:] if argv is None else argv
    keep_freed_memory()
    if argv[:1] == ["app"]:  # the app parses its own options (fastdiff app --help lists them)
        cmd_app(argparse.Namespace(app_args=argv[1:]))
        return 0
    try:
        args = build_parser(prog).parse_args(argv)
        args.run(args)
    except (UsageError, CheckpointError, DataError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def run() -> None:
    """The `fastdiff` console script."""
    sys.exit(main(prog="fastdiff"))
