"""`fastdiff bench`: sampling and training speed, the profile, the classroom's costs, the cascade's speed
and quality, the GPU check, and the browser edition's speed; tables to assets/."""

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
        choices=("sample", "train", "profile", "classroom", "web", "load", "all", "cascade", "gpu"),
        help="profile: op shares and FLOP/s of a guided forward pass; classroom: the replay's and the 2D lab's "
        "costs; web: the exported browser edition in headless Chromium beside PyTorch on the same CPU (all "
        "includes it where Chromium, Playwright and the export packages are installed); cascade: single "
        "resolution vs 2- and 3-stage cascades, speed and quality; gpu: the GPU check "
        "(CUDA graph vs plain sampling, training per precision, same-seed difference to the CPU); load: the "
        "served app under simulated students (not part of all)",
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
    bench.add_argument(
        "--site",
        type=Path,
        default=None,
        metavar="DIR",
        help="web: measure this existing export (fastdiff export web --out DIR) instead of exporting the "
        "shipped models into a temporary folder",
    )
    bench.add_argument(
        "--repeats", type=int, default=3, help="web: timed runs per measurement, median reported (default %(default)s)"
    )
    bench.add_argument(
        "--app",
        type=Path,
        default=None,
        metavar="DIR",
        help="load: serve the app from this FastDiff source tree (a checkout of another commit) instead",
    )
    bench.add_argument(
        "--students", type=int, default=20, help="load: simulated students per burst (default %(default)s)"
    )
    bench.add_argument(
        "--sessions", type=int, default=500, help="load: new sessions for the memory check (default %(default)s)"
    )
    from ..bench.web import CHROMIUM

    bench.add_argument("--chromium", default=CHROMIUM, help="web: the Chromium executable (default %(default)s)")
    bench.set_defaults(run=run)


def run_web(args) -> None:
    from ..bench.web import bench_web

    print(bench_web(args.assets, args.site, args.checkpoints, args.repeats, args.chromium))


def run_load(args) -> None:
    from ..bench.load import FIRST_SESSIONS, bench_load
    from ..nn.shipped import checkpoints_folder
    from ..report import machine

    if not 1 <= args.students <= 100 or not FIRST_SESSIONS <= args.sessions <= 10_000:
        raise UsageError(f"--students must be 1 to 100 and --sessions {FIRST_SESSIONS} to 10000")
    if args.app is not None and not (args.app / "fastdiff" / "app" / "__main__.py").is_file():
        raise UsageError(f"--app {args.app}: not a FastDiff source tree (no fastdiff/app/__main__.py in it)")
    table = bench_load(checkpoints_folder(args.checkpoints)[0], args.app, args.students, args.sessions)
    text = f"# Benchmark: load\n\nMeasured with `python -m fastdiff bench load` on: {machine()}.\n\n{table}"
    args.assets.mkdir(parents=True, exist_ok=True)
    (args.assets / "bench-load.md").write_text(text)
    print(text)


def run(args) -> None:
    if args.repeats < 1:
        raise UsageError("--repeats must be at least 1")
    if args.what == "load":
        run_load(args)
        return
    if args.what == "web":
        run_web(args)
        return
    if args.what == "gpu":
        from ..bench.gpu import check
        from ..device import resolve_device

        check(args.assets, resolve_device())
        return
    if args.what != "cascade":
        from ..bench.runner import run as run_benchmark
        from ..bench.web import missing

        skip_web = args.what == "all" and missing(args.chromium, export=args.site is None)
        if skip_web:  # said first, not after the other tables' minutes
            print(f"bench all: web skipped, {skip_web}")
        run_benchmark(args.what, args.assets)
        if args.what == "all" and not skip_web:
            run_web(args)
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
