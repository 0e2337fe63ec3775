"""--precision auto reads its choice per device type from one table, which the GPU check's measurement
sets for CUDA, unless $FASTDIFF_AUTO_PRECISION names one (how .ci/run takes a bf16 machine down the fp32
path)."""

import pytest
import torch

from fastdiff import device


@pytest.fixture(autouse=True)
def no_chosen_precision(monkeypatch):
    monkeypatch.delenv(device.AUTO_PRECISION_VARIABLE, raising=False)


def test_the_variable_decides_what_auto_picks_and_nothing_else(monkeypatch):
    monkeypatch.setattr(device, "cpu_has_bf16", lambda: True)
    monkeypatch.setenv(device.AUTO_PRECISION_VARIABLE, "fp32")
    assert device.resolve_precision("auto", torch.device("cpu")) == "fp32"
    assert device.resolve_precision("bf16", torch.device("cpu")) == "bf16"  # what is asked for stays
    monkeypatch.setenv(device.AUTO_PRECISION_VARIABLE, "fp64")
    with pytest.raises(ValueError, match=r"\$FASTDIFF_AUTO_PRECISION must be one of fp32, bf16, fp16, got 'fp64'"):
        device.resolve_precision("auto", torch.device("cpu"))


def test_auto_precision_on_cuda_is_the_tables_entry(monkeypatch):
    monkeypatch.setitem(device.AUTO_PRECISION, "cuda", "bf16")
    assert device.resolve_precision("auto", torch.device("cuda")) == "bf16"
    monkeypatch.setitem(device.AUTO_PRECISION, "cuda", "fp32")
    assert device.resolve_precision("auto", torch.device("cuda")) == "fp32"


def test_auto_precision_on_the_cpu_needs_native_bf16(monkeypatch):
    monkeypatch.setattr(device, "cpu_has_bf16", lambda: False)
    assert device.resolve_precision("auto", torch.device("cpu")) == "fp32"
    monkeypatch.setattr(device, "cpu_has_bf16", lambda: True)
    assert device.resolve_precision("auto", torch.device("cpu")) == "bf16"
    assert device.resolve_precision("auto", torch.device("meta")) == "fp32"


def test_the_machine_line_names_how_the_cpu_runs_bf16(monkeypatch):
    from fastdiff import report

    monkeypatch.setattr(report, "resolve_device", lambda: torch.device("cpu"))
    for units, shown in [("AMX", "(AMX)"), ("AVX512-BF16, no AMX", "(AVX512-BF16, no AMX)"), ("", "(no native bf16)")]:
        monkeypatch.setattr(report, "cpu_bf16_units", lambda units=units: units)
        assert shown in report.machine()
