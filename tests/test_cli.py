"""The command line, on a tiny random checkpoint: images come out, bad input exits 2 with one line, every
flag's help shows its default, and a run says which precision it uses and why."""

import argparse
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import make_tiny_checkpoint
from PIL import Image

from fastdiff import device
from fastdiff.cli import build_parser, main


def test_sample_writes_a_grid_and_a_gif(tiny_checkpoint, tmp_path, capsys):
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
    assert capsys.readouterr().out == f"wrote {out}\nwrote {gif}\n"  # --quiet: no device line


@pytest.mark.parametrize(
    "model_options, sampling_flags, description",
    [
        ({}, ["--sampler", "dpm++", "--steps", "4"], "dpm++"),
        (dict(guidance_embedding=True, distilled_steps=4, prediction="v"), [], "distilled (ddim, 4 steps)"),
    ],
)
def test_sample_says_its_precision_and_counts_its_steps_from_the_start(
    tmp_path, capsys, model_options, sampling_flags, description
):
    checkpoint = make_tiny_checkpoint(tmp_path / "model", **model_options)
    flags = ["--checkpoint", str(checkpoint), "--n", "1", "--out", str(tmp_path / "x.png"), "--device", "cpu"]
    assert main(["sample", *flags, "--precision", "fp32", *sampling_flags]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0] == "device cpu, precision fp32 (asked for)"
    first_bar = captured.err.lstrip("\r").split("\r")[0]
    assert first_bar.startswith(f"{description}:   0%") and "| 0/4 [" in first_bar


@pytest.mark.parametrize(
    "units, variable, asked, line",
    [
        ("", None, "auto", "fp32 (auto: this CPU has no native bf16)"),
        ("AVX512-BF16, no AMX", None, "auto", "bf16 (auto: this CPU runs bf16 natively: AVX512-BF16, no AMX)"),
        ("AMX", None, "auto", "bf16 (auto: this CPU runs bf16 natively: AMX)"),
        ("AMX", None, "fp32", "fp32 (asked for)"),
        ("AMX", "fp32", "auto", "fp32 (auto, FASTDIFF_AUTO_PRECISION=fp32)"),
    ],
)
def test_the_precision_line_says_why(monkeypatch, units, variable, asked, line):
    monkeypatch.setattr(device, "cpu_bf16_units", lambda: units)
    monkeypatch.delenv("FASTDIFF_AUTO_PRECISION", raising=False)
    if variable:
        monkeypatch.setenv("FASTDIFF_AUTO_PRECISION", variable)
    assert device.describe_precision(asked, torch.device("cpu")) == line


def test_every_flag_has_help_that_shows_its_default(monkeypatch):
    monkeypatch.delenv("FASTDIFF_DATA", raising=False)  # the --data defaults' help names cifar10
    lacking, parsers = [], [("", build_parser())]
    while parsers:  # every command, and the commands under a command (export onnx|web)
        prefix, parser = parsers.pop()
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        for name, command in commands.choices.items():
            formatter = command._get_formatter()
            for action in command._actions:
                if isinstance(action, argparse._SubParsersAction):
                    parsers.append((f"{prefix}{name} ", command))
                if action.default == argparse.SUPPRESS:  # -h
                    continue
                text = formatter._expand_help(action) if action.help else ""
                default = action.default
                shown = {str(default)} | ({f"{default:g}"} if isinstance(default, float) else set())
                shown |= {" ".join(map(str, default))} if isinstance(default, list) else set()
                shows_default = "default" in text and any(s in text for s in shown)
                if not text or (default is not None and default is not False and not shows_default):
                    lacking.append(f"{prefix}{name} {action.option_strings or action.dest}: {text!r}")
    assert not lacking, "flags without help or without their default: " + "; ".join(lacking)


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


def test_missing_checkpoint_exits_2_saying_where_it_looked(tmp_path, capsys):
    assert main(["sample", "--checkpoint", str(tmp_path / "none"), "--quiet"]) == 2
    assert f"checkpoint not found; looked in {tmp_path / 'none'}" in capsys.readouterr().err
    assert main(["sample", "--checkpoint", "cifar10-zzz", "--checkpoints", str(tmp_path), "--quiet"]) == 2
    assert f"looked in ./cifar10-zzz, --checkpoints {tmp_path}\n" in capsys.readouterr().err


def test_a_checkpoint_name_is_looked_up_in_the_checkpoints_folder(tiny_checkpoint, tmp_path, monkeypatch):
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    name, folder, flags = tiny_checkpoint.name, str(tiny_checkpoint.parent), ["--n", "1", "--steps", "2", "--quiet"]
    assert main(["sample", "--checkpoint", name, "--checkpoints", folder, "--out", "flag.png", *flags]) == 0
    monkeypatch.setenv("FASTDIFF_CHECKPOINTS", folder)
    assert main(["sample", "--checkpoint", f"checkpoints/{name}", "--out", "variable.png", *flags]) == 0
    assert Path("flag.png").is_file() and Path("variable.png").is_file()


@pytest.mark.slow
def test_module_entry_point_and_help():
    result = subprocess.run([sys.executable, "-m", "fastdiff", "sample", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--guidance" in result.stdout
    result = subprocess.run([sys.executable, "-m", "fastdiff", "fly"], capture_output=True, text=True)
    assert result.returncode == 2 and "invalid choice" in result.stderr and "Traceback" not in result.stderr
