"""Where the shipped checkpoints are found: --checkpoints, then $FASTDIFF_CHECKPOINTS, then ./checkpoints,
then the installed copy; a name is looked up there, and a checkpoint not found names every place looked."""

from pathlib import Path

import pytest

from fastdiff.nn import shipped
from fastdiff.nn.checkpoint import CheckpointError
from fastdiff.nn.shipped import ENVIRONMENT, checkpoints_folder, find_checkpoint

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def places(tmp_path, monkeypatch):
    """Folders for the flag, the variable and the installed copy, each holding cifar10-base; the
    working directory is an empty folder and the variable is unset."""
    folders = {name: tmp_path / name for name in ("flag", "variable", "installed")}
    for folder in folders.values():
        (folder / "cifar10-base").mkdir(parents=True)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.delenv(ENVIRONMENT, raising=False)
    monkeypatch.setattr(shipped, "INSTALLED", (folders["installed"], tmp_path / "checkout"))
    return folders


def test_the_first_place_that_applies_gives_the_folder(places, monkeypatch):
    assert checkpoints_folder()[0] == places["installed"]
    Path("checkpoints").mkdir()
    assert checkpoints_folder()[0] == Path("checkpoints")
    monkeypatch.setenv(ENVIRONMENT, str(places["variable"]))
    assert checkpoints_folder()[0] == places["variable"]
    assert checkpoints_folder(places["flag"])[0] == places["flag"]


def test_a_checkout_run_from_elsewhere_uses_its_top_level_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENVIRONMENT, raising=False)
    assert checkpoints_folder()[0] == ROOT / "checkpoints"  # the package holds no copy here


def test_a_name_is_looked_up_in_the_folder_and_an_existing_path_used_as_it_is(places):
    for name in ("cifar10-base", "checkpoints/cifar10-base"):
        assert find_checkpoint(name) == places["installed"] / "cifar10-base"
        assert find_checkpoint(name, places["flag"]) == places["flag"] / "cifar10-base"
    Path("checkpoints/cifar10-base").mkdir(parents=True)
    assert find_checkpoint("checkpoints/cifar10-base") == Path("checkpoints/cifar10-base")
    assert find_checkpoint(places["variable"] / "cifar10-base") == places["variable"] / "cifar10-base"


def test_not_found_names_every_place_looked(places, monkeypatch):
    with pytest.raises(CheckpointError) as error:
        find_checkpoint("cifar10-attn")
    assert str(error.value) == (
        f"cifar10-attn: checkpoint not found; looked in ./cifar10-attn, ${ENVIRONMENT} (unset), "
        f"./checkpoints (missing), {places['installed']}"
    )
    monkeypatch.setenv(ENVIRONMENT, str(places["variable"] / "gone"))
    with pytest.raises(
        CheckpointError, match=rf"looked in \./checkpoints/cifar10-base, \${ENVIRONMENT}=.*gone \(missing\)$"
    ):
        find_checkpoint("checkpoints/cifar10-base")
    with pytest.raises(CheckpointError, match=r"^runs/mine: checkpoint not found; looked in \./runs/mine$"):
        find_checkpoint("runs/mine")  # not a shipped name: only where it points
