"""The installed package: the wheel holds every package and the shipped checkpoints, and an installed
`fastdiff` finds its models from any directory."""

import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tomllib
from PIL import Image

from fastdiff.nn.checkpoint import SHIPPED
from fastdiff.nn.shipped import ENVIRONMENT

ROOT = Path(__file__).resolve().parents[1]
EVALUATOR = "evaluator-cifar10"


def test_pyproject_lists_every_package():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(module.parent.relative_to(ROOT).parts) for module in (ROOT / "fastdiff").rglob("*.py")}
    assert listed == found | {"fastdiff.checkpoints"}


@pytest.mark.slow
def test_an_installed_fastdiff_finds_its_checkpoints_from_any_directory(tmp_path):
    source = tmp_path / "source"  # a copy to build from, so that the build leaves nothing in the checkout
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source)
    for name in ("fastdiff", "checkpoints"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", str(source), "--no-deps", "--no-build-isolation", "-w", tmp_path], check=True)
    (wheel,) = tmp_path.glob("fastdiff-*.whl")
    files = set(zipfile.ZipFile(wheel).namelist())
    assert {f"fastdiff/checkpoints/{name}/model.safetensors" for name in (*SHIPPED, EVALUATOR)} <= files

    venv.create(tmp_path / "venv", system_site_packages=True)  # torch and the rest from this Python
    python, fastdiff = (tmp_path / "venv" / "bin" / name for name in ("python", "fastdiff"))
    subprocess.run([python, *pip[1:], "install", "--no-deps", "--no-index", wheel], check=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    environment = {name: value for name, value in os.environ.items() if name not in (ENVIRONMENT, "PYTHONPATH")}
    run = dict(cwd=elsewhere, env=environment, check=True)
    sample = "sample --class cat --out cats.png --n 2 --steps 2 --sampler ddim".split()
    subprocess.run([fastdiff, *sample], **run)
    cats = np.asarray(Image.open(elsewhere / "cats.png"))
    assert cats.ndim == 3 and cats.shape[1] >= 2 * 32 and cats.std() > 0

    listing = (  # what `fastdiff app` lists by default
        "import torch; from fastdiff.app.models import ModelStore; from fastdiff.nn.shipped import checkpoints_folder; "
        "folder = checkpoints_folder()[0]; store = ModelStore(folder, 'runs', torch.device('cpu')); "
        "print(folder); print(*store.names())"
    )
    *_, folder, names = subprocess.run(
        [python, "-c", listing], **run, stdout=subprocess.PIPE, text=True
    ).stdout.splitlines()
    assert Path(folder).is_relative_to(tmp_path / "venv") and (Path(folder) / EVALUATOR).is_dir()
    assert names.split() == sorted(SHIPPED)
