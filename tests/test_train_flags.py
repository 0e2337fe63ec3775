"""`fastdiff train` builds its training flags from TrainConfig's fields: each field has its flag and
default, the parsed flags make the TrainConfig, and out-of-range values exit 2 with one line."""

import pytest

from fastdiff.cli import build_parser, config_from_args, main
from fastdiff.config import TrainConfig

REQUIRED = ["train", "--data", "data.zip", "--out", "run"]


def test_every_training_field_has_a_flag_with_its_default():
    args = build_parser().parse_args(REQUIRED)
    assert config_from_args(TrainConfig, args) == TrainConfig()


def test_the_flags_set_their_fields():
    argv = [
        *REQUIRED,
        "--batch-size",
        "8",
        "--lr-min",
        "0",
        "--ema-decay",
        "0.5",
        "--freeze-base",
        "--precision",
        "bf16",
    ]
    config = config_from_args(TrainConfig, build_parser().parse_args(argv))
    assert config == TrainConfig(batch_size=8, lr_min=0.0, ema_decay=0.5, freeze_base=True, precision="bf16")


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--epochs", "0"], "epochs must be at least 1, got 0"),
        (["--lr", "nan"], "lr must be positive, got nan"),
        (["--label-dropout", "1.5"], "label_dropout must be between 0 and 1, got 1.5"),
        (["--eval-every", "-1"], "eval_every must be at least 0, got -1"),
        (["--warmup-steps", "ten"], "invalid int value: 'ten'"),
    ],
)
def test_out_of_range_training_flags_exit_2_with_one_line(tmp_path, capsys, flags, message):
    code = main(["train", "--data", str(tmp_path / "none.zip"), "--out", str(tmp_path / "run"), *flags])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()
