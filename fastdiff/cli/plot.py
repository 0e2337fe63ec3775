"""`fastdiff plot`: a run's loss and learning-rate curves."""

from __future__ import annotations

from pathlib import Path


def add_parser(commands) -> None:
    plot = commands.add_parser("plot", help="draw a run's loss and learning-rate curves (loss.png)")
    plot.add_argument("folder", type=Path, help="the run folder (holding log.jsonl)")
    plot.set_defaults(run=run)


def run(args) -> None:
    from ..train.trainer import plot_run

    print(plot_run(args.folder))
