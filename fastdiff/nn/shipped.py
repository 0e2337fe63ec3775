"""Where the shipped checkpoints are, so that an installed `fastdiff` finds its models from any directory.

The folder is the first of: a --checkpoints flag, $FASTDIFF_CHECKPOINTS, ./checkpoints when it exists,
the installed copy (the wheel's package data fastdiff/checkpoints; in a source checkout, the top-level
checkpoints/ next to the package). A checkpoint argument that is an existing path is used as it is; a
shipped name (`cifar10-base`, or `checkpoints/cifar10-base` as the docs write it) is looked up there.
"""

from __future__ import annotations

import os
from pathlib import Path

from .checkpoint import CheckpointError

ENVIRONMENT = "FASTDIFF_CHECKPOINTS"
LOCAL = Path("checkpoints")
PACKAGE = Path(__file__).resolve().parents[1]
INSTALLED = (PACKAGE / "checkpoints", PACKAGE.parent / "checkpoints")  # a wheel's copy, a checkout's folder


def place(label: str, folder: Path) -> str:
    """A place looked, for messages: its label, marked when the folder is missing."""
    return label if folder.is_dir() else f"{label} (missing)"


def checkpoints_folder(chosen: Path | str | None = None) -> tuple[Path, list[str]]:
    """The folder of the shipped checkpoints (`chosen` is a --checkpoints flag) and the places looked,
    in order; a folder that is named (by the flag or the variable) is used even when missing."""
    if chosen is not None:
        return Path(chosen), [place(f"--checkpoints {chosen}", Path(chosen))]
    if os.environ.get(ENVIRONMENT):
        folder = Path(os.environ[ENVIRONMENT])
        return folder, [place(f"${ENVIRONMENT}={folder}", folder)]
    looked = [f"${ENVIRONMENT} (unset)"]
    if LOCAL.is_dir():
        return LOCAL, looked + ["./checkpoints"]
    installed = next((folder for folder in INSTALLED if folder.is_dir()), INSTALLED[0])
    return installed, looked + ["./checkpoints (missing)", place(str(installed), installed)]


EVALUATOR_HINT = "train the evaluator with `python -m fastdiff eval train-classifier`"


def find_checkpoint(argument: Path | str, chosen: Path | str | None = None, hint: str = "") -> Path:
    """The checkpoint folder an argument names: an existing path as it is, else a shipped name in
    checkpoints_folder(chosen). Raises CheckpointError saying where it looked (and `hint`, what to do)."""
    path = Path(argument)
    if path.exists():
        return path
    looked = [str(path) if path.is_absolute() else f"./{path}"]
    if path.parts in ((path.name,), (LOCAL.name, path.name)):
        folder, places = checkpoints_folder(chosen)
        if (folder / path.name).is_dir():
            return folder / path.name
        looked += places
    raise CheckpointError(
        f"{argument}: checkpoint not found; looked in {', '.join(looked)}" + (f" ({hint})" if hint else "")
    )
