"""`fastdiff bench`: sampling and training speed, the profile, the classroom's costs, the cascade's speed
and quality, and the GPU check; tables to assets/."""

from __future__ import annotations

from pathlib import Path

from ..data import default_dataset
from .common import UsageError, checkpoints_options


def add_parser(commands) -> None:
    bench = commands.add_parser(
        "bench", parents=[checkpoints_options()], help="measure sampling and training speed, write tables to assets/"
    )
    bench.add_argument(
        "what",
        choices=("sample", "train", "profile", "classroom", "all", "cascade", "gpu"),
        help="profile: op shares and FLOP/s of a guided forward pass; classroom: the replay's and the 2D lab's "
        "costs; cascade: single resolution vs 2- and "
        "3-stage cascades, speed and quality; gpu: the GPU check "
        "(CUDA graph vs plain sampling, training per precision, same-seed difference to the CPU)",
    )
    bench.add_argument("--assets", type=Path, default=Path("assets"), help="where the tables go (default %(default)s)")
    bench.add_argument(
        "--classifier",
        type=Path,
        default=Path("checkpoints/evaluator-cifar10"),
        help="cascade: the evaluator, a folder or shipped name (default %(default)s)",
    )
    bench.add_argument("--batch", type=int, default=64, help="cascade: images per timed batch (default %(default)s)")
    bench.add_argument(
        "--data",
        default=default_dataset(),
        help="cascade: real images (test split; default $FASTDIFF_DATA, else cifar10)",
    )
    bench.add_argument(
        "--n", type=int, default=500, help="cascade: samples per quality measurement (default %(default)s)"
    )
    bench.add_argument(
        "--sweep",
        action="store_true",
        help="cascade: first sweep the first stage's truncation point and the final stage's steps",
    )
    bench.add_argument(
        "--sweep-n", type=int, default=200, help="cascade: samples per sweep candidate (default %(default)s)"
    )
    bench.set_defaults(run=run)


def run(args) -> None:
    if args.what == "gpu":
        from ..bench.gpu import check
        from ..device import resolve_device

        check(args.assets, resolve_device())
        return
    if args.what != "cascade":
        from ..bench.runner import run as run_benchmark

        run_benchmark(args.what, args.assets)
        return
    from ..bench.cascade import compare
    from ..nn.shipped import EVALUATOR_HINT, checkpoints_folder, find_checkpoint

    if args.n < 2 or args.sweep_n < 2 or args.batch < 1:
        raise UsageError("--n and --sweep-n must be at least 2, --batch at least 1")
    args.assets.mkdir(parents=True, exist_ok=True)
    folder = checkpoints_folder(args.checkpoints)[0]
    single = folder / "cifar10-base"
    text = "# Cascade vs single resolution\n\n" + compare(
        folder / "cifar10-cascade",
        single if (single / "config.json").exists() else None,
        find_checkpoint(args.classifier, args.checkpoints, EVALUATOR_HINT),
        args.data,
        args.n,
        args.sweep,
        args.sweep_n,
        args.batch,
    )
    (args.assets / "cascade.md").write_text(text)
    print(text)
