"""What several commands share: the usage error and its parser, the device and checkpoints options, flags
built from a config dataclass, checked output paths, and the progress display of a training run."""

from __future__ import annotations

import argparse
import dataclasses
import signal
import typing
from pathlib import Path

import torch

from ..device import AUTO_PRECISION, PRECISIONS, device_line


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def device_options() -> Parser:
    """The parent parser of the commands that run a model: --device, --precision and --quiet."""
    options = Parser(add_help=False)
    options.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    options.add_argument(
        "--precision",
        default="auto",
        choices=PRECISIONS,
        help=f"autocast precision; auto = {AUTO_PRECISION['cuda']} on CUDA, bf16 on a bf16-capable CPU, else fp32 "
        "(default %(default)s)",
    )
    options.add_argument("--quiet", action="store_true", help="no progress bar or epoch lines (warnings still print)")
    return options


def checkpoints_options() -> Parser:
    """The parent parser of the commands that take a checkpoint: --checkpoints, where a checkpoint given
    by name is looked up (fastdiff.nn.shipped)."""
    options = Parser(add_help=False)
    options.add_argument(
        "--checkpoints",
        type=Path,
        default=None,
        metavar="DIR",
        help="where a checkpoint given by name (cifar10-base, or checkpoints/cifar10-base) is looked up when no "
        "such path exists (default: $FASTDIFF_CHECKPOINTS, else ./checkpoints when it exists, else the installed copy)",
    )
    return options


def announce_device(device: torch.device, precision: str) -> None:
    """The one line that says which device and precision a command runs with, and why."""
    print(device_line(device, precision))


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


def numbers(record: dict) -> str:
    """An epoch record for the terminal: the learning rate in scientific notation, the rest to 4 places."""
    return ", ".join(f"{k}: {v:.2e}" if k == "lr" else f"{k}: {round(v, 4)}" for k, v in record.items())


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
