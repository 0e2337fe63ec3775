"""Command line: `python -m fastdiff sample|train ...`, one module per command holding its parser and
its handler. Bad input exits with status 2 and one line."""

from __future__ import annotations

import argparse
import sys

from ..data import DataError
from ..device import keep_freed_memory
from ..export.onnx import ExportError
from ..nn.checkpoint import CheckpointError
from . import app, bench, distill, eval, export, plot, sample, train
from .common import Parser, UsageError, config_from_args

__all__ = ["Parser", "UsageError", "build_parser", "config_from_args", "main", "run"]

COMMANDS = (sample, train, distill, app, plot, eval, bench, export)  # in the order --help lists them


def build_parser(prog: str = "python -m fastdiff") -> Parser:
    parser = Parser(prog=prog, description="FastDiff: fast class-conditional diffusion.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def main(argv: list[str] | None = None, prog: str = "python -m fastdiff") -> int:
    argv = sys.argv[1:] if argv is None else argv
    keep_freed_memory()
    if argv[:1] == ["app"]:  # the app parses its own options (fastdiff app --help lists them)
        app.run(argparse.Namespace(app_args=argv[1:]))
        return 0
    try:
        args = build_parser(prog).parse_args(argv)
        args.run(args)
    except (UsageError, CheckpointError, DataError, ExportError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def run() -> None:
    """The `fastdiff` console script."""
    sys.exit(main(prog="fastdiff"))
