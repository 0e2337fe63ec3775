"""The command line, on a tiny random checkpoint: images come out, bad input exits 2 with one line."""

import subprocess
import sys

import pytest
from PIL import Image

from fastdiff.cli import main


def test_sample_writes_a_grid_and_a_gif(tiny_checkpoint, tmp_path):
    out, gif = tmp_path / "grid.png", tmp_path / "denoise.gif"
    assert (
        main(
            [
                "sample",
                "--checkpoint",
                str(tiny_checkpoint),
                "--class",
                "c",
                "--steps",
                "4",
                "--n",
                "4",
                "--out",
                str(out),
                "--gif",
                str(gif),
                "--quiet",
            ]
        )
        == 0
    )
    assert Image.open(out).size == (70, 70)  # 2x2 tiles of 32 px with 2 px padding
    assert Image.open(gif).n_frames >= 4


@pytest.mark.parametrize(
    "bad_args, message",
    [
        (["--class", "dragon"], "unknown class 'dragon'"),
        (["--sampler", "euler"], "unknown sampler 'euler'"),
        (["--steps", "0"], "steps must be between 1 and 50"),
        (["--steps", "51"], "steps must be between 1 and 50"),
        (["--guidance", "nan"], "guidance weight must be between 0 and 10, got nan"),
        (["--n", "0"], "--n must be between 1 and 1024"),
        (["--steps", "ten"], "invalid int value"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(tiny_checkpoint, tmp_path, capsys, bad_args, message):
    code = main(
        ["sample", "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "x.png"), "--quiet", *bad_args]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "x.png").exists()


def test_missing_checkpoint_exits_2(tmp_path, capsys):
    assert main(["sample", "--checkpoint", str(tmp_path / "none"), "--quiet"]) == 2
    assert "checkpoint folder not found" in capsys.readouterr().err


@pytest.mark.slow
def test_module_entry_point_and_help():
    result = subprocess.run([sys.executable, "-m", "fastdiff", "sample", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--guidance" in result.stdout
    result = subprocess.run([sys.executable, "-m", "fastdiff", "fly"], capture_output=True, text=True)
    assert result.returncode == 2 and "invalid choice" in result.stderr and "Traceback" not in result.stderr
