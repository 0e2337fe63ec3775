"""`fastdiff eval`: sample quality with the project's classifier, its quality tables and diagnosis, and
training that classifier."""

from __future__ import annotations

from pathlib import Path

from ..data import default_dataset
from ..diffusion.samplers import SAMPLERS
from .common import UsageError, announce_device, checkpoints_options, device_options


def add_parser(commands) -> None:
    evaluation = commands.add_parser(
        "eval", parents=[device_options(), checkpoints_options()], help="sample quality with the project's classifier"
    )
    evaluation.add_argument(
        "action",
        nargs="?",
        default="run",
        choices=("run", "train-classifier", "sweep", "diagnose"),
        help="run (default): evaluate one configuration; train-classifier; sweep: the quality tables; "
        "diagnose: why some samples are noise textures, and samplers compared on them (assets/diagnosis.md)",
    )
    evaluation.add_argument(
        "--checkpoint",
        type=Path,
        default=Path("checkpoints/cifar10-base"),
        help="checkpoint folder or shipped name to evaluate (default %(default)s)",
    )
    evaluation.add_argument(
        "--classifier",
        type=Path,
        default=Path("checkpoints/evaluator-cifar10"),
        help="the evaluator's folder or shipped name; train-classifier writes it (default %(default)s)",
    )
    evaluation.add_argument(
        "--data", default=default_dataset(), help="real images (test split; default $FASTDIFF_DATA, else cifar10)"
    )
    evaluation.add_argument(
        "--sampler", default="ddim", choices=tuple(SAMPLERS), help="sampler to evaluate (default %(default)s)"
    )
    evaluation.add_argument("--steps", type=int, default=50, help="sampling steps (default %(default)s)")
    evaluation.add_argument(
        "--guidance", type=float, default=2.0, help="classifier-free guidance w (default %(default)s)"
    )
    evaluation.add_argument(
        "--stages", type=int, default=1, help="cascade stages (1 = plain sampling; default %(default)s)"
    )
    evaluation.add_argument("--n", type=int, default=1000, help="samples (balanced over classes; default %(default)s)")
    evaluation.add_argument("--seed", type=int, default=0, help="image i uses seed + i (default %(default)s)")
    evaluation.add_argument(
        "--metric",
        choices=("classifier", "fid"),
        default="classifier",
        help="fid adds standard FID (needs torch-fidelity or clean-fid; default %(default)s)",
    )
    evaluation.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    evaluation.add_argument(
        "--assets",
        type=Path,
        default=Path("assets"),
        help="sweep and diagnose: where the tables and pictures go (default %(default)s)",
    )
    evaluation.add_argument(
        "--width", type=int, default=32, help="train-classifier: network width (default %(default)s)"
    )
    evaluation.add_argument("--epochs", type=int, default=16, help="train-classifier: epochs (default %(default)s)")
    evaluation.add_argument(
        "--lr", type=float, default=0.2, help="train-classifier: peak learning rate (default %(default)s)"
    )
    evaluation.add_argument(
        "--init", type=Path, default=None, help="train-classifier: continue from this classifier (e.g. the saved one)"
    )
    evaluation.set_defaults(run=run)


def run(args) -> None:
    import json

    from ..device import resolve_device, resolve_precision

    device = resolve_device(args.device)
    if args.action == "train-classifier":
        from ..data import load_dataset
        from ..eval.classifier import train_classifier

        if not args.quiet:
            announce_device(device, args.precision)
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
    from ..eval.evaluate import ROW_HEADERS, evaluate, row, sweep
    from ..nn.shipped import EVALUATOR_HINT, checkpoints_folder, find_checkpoint
    from ..report import markdown_table

    classifier = find_checkpoint(args.classifier, args.checkpoints, EVALUATOR_HINT)
    if args.action == "sweep":
        print(sweep(checkpoints_folder(args.checkpoints)[0], classifier, args.data, args.n, args.assets, device))
        return
    checkpoint = find_checkpoint(args.checkpoint, args.checkpoints)
    if args.n < 2:
        raise UsageError(f"--n must be at least 2, got {args.n}")
    if args.action == "diagnose":
        from ..eval.diagnose import diagnose

        diagnose(checkpoint, classifier, args.data, args.n, args.guidance, args.seed, args.assets, device)
        print(f"wrote {args.assets / 'diagnosis.md'} and {args.assets / 'diagnosis.png'}")
        return
    result = evaluate(
        checkpoint,
        classifier,
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
