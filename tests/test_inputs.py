"""The command line and the training data check their input before any work and name what is wrong:
output paths, seeds, zip members, empty class folders, unreadable or too large images, a run folder in use."""

import pytest
from helpers import png, write_zip
from test_data import png_header

from fastdiff.cli import main
from fastdiff.data import DataError, load_image_folder


def sample(checkpoint, *args) -> list[str]:
    return ["sample", "--checkpoint", str(checkpoint), "--steps", "2", "--n", "2", "--quiet", *args]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--seed", "-5"], "seed must be between 0 and 2147483645 for 2 images, got -5"),
        (["--seed", "99999999999999999999"], "seed must be between 0 and 2147483645 for 2 images"),
        (["--out", "{tmp}/nonexistent/x.png"], "the folder {tmp}/nonexistent does not exist"),
        (["--out", "{tmp}"], "is a folder; give a file name"),
        (["--out", "{tmp}/x.txt"], "unknown file type '.txt'"),
        (["--gif", "{tmp}/x.png"], "--gif {tmp}/x.png: unknown file type '.png'; use one of .gif, .mp4"),
    ],
)
def test_sample_checks_seed_and_output_paths_before_any_work(tiny_checkpoint, tmp_path, capsys, args, message):
    args = [a.format(tmp=tmp_path) for a in args]
    assert main(sample(tiny_checkpoint, *args)) == 2
    assert message.format(tmp=tmp_path) in capsys.readouterr().err
    assert not (tmp_path / "nonexistent").exists() and not (tmp_path / "x.txt").exists()


@pytest.mark.parametrize(
    "files, message",
    [
        (
            {"a/1.png": png(1), "../../evil.png": png(2)},
            "members outside the archive's folder are refused: ../../evil.png",
        ),
        ({"a/1.png": png(1), "b/": b""}, "class folder(s) without images: b"),
        ({"a/1.png": png(1), "a/2.jpg": b"not an image"}, "a/2.jpg: not a readable image (its content"),
    ],
)
def test_zip_problems_are_named(tmp_path, files, message):
    with pytest.raises(DataError) as error:
        load_image_folder(write_zip(tmp_path / "data.zip", files))
    assert message in str(error.value) and "BytesIO" not in str(error.value)


def test_an_empty_class_folder_on_disk_is_named(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "1.png").write_bytes(png(1))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="class folder\\(s\\) without images: empty"):
        load_image_folder(tmp_path)


def test_train_refuses_an_image_over_the_pixel_limit_in_one_line(tmp_path, capsys):
    data = write_zip(tmp_path / "data.zip", {"a/1.png": png(1), "b/big.png": png_header(20000, 20000)})
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "run"), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {data}:b/big.png: over 178,956,970 pixels, more than the 4096x4096 (16,777,216 pixels) " + (
        "a training image may have; shrink it or leave it out\n"
    )
    assert not (tmp_path / "run").exists()


def test_training_into_a_used_run_folder_needs_resume_or_overwrite(tmp_path, capsys):
    data = write_zip(tmp_path / "data.zip", {f"{c}/{i}.png": png(i) for c in "ab" for i in range(4)})
    out = tmp_path / "run"
    train = ["train", "--data", str(data), "--out", str(out), "--epochs", "1", "--batch-size", "4", "--n-feat", "8"]
    assert main([*train, "--quiet"]) == 0
    assert "epoch:" not in capsys.readouterr().out
    assert main([*train, "--quiet"]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main([*train, "--overwrite"]) == 0
    assert len((out / "log.jsonl").read_text().splitlines()) == 1
    printed = capsys.readouterr()
    assert "'lr': 0.0" not in printed.out + printed.err and "lr: " in printed.out + printed.err
    assert "prepared 8 images, none changed\n" in printed.out
