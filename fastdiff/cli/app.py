"""`fastdiff app`: the Gradio app, which parses its own options (the same as `python app.py`)."""

from __future__ import annotations

import argparse


def add_parser(commands) -> None:
    app = commands.add_parser(
        "app",
        add_help=False,
        help="run the Gradio app (the same as python app.py; fastdiff app --help lists its options)",
    )
    app.add_argument("app_args", nargs=argparse.REMAINDER, help="the app's options (fastdiff app --help lists them)")
    app.set_defaults(run=run)


def run(args) -> None:
    from ..app.ui import main as app_main

    app_main(args.app_args)
