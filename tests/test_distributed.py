"""torchrun's device choice without starting processes: --device cpu means gloo and no GPU is touched;
more processes than GPUs get a one-line message."""

import pytest
import torch

from fastdiff.train import trainer


@pytest.fixture
def second_of_two_processes(monkeypatch):
    """This process as rank 1 of 2 on a machine that (seemingly) has one GPU; records the backend."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_device", lambda index: pytest.fail(f"set_device({index}) called"))
    backends = []
    monkeypatch.setattr(trainer.dist, "init_process_group", backends.append)
    return backends


def test_device_cpu_under_torchrun_uses_gloo_and_no_gpu(second_of_two_processes):
    assert trainer.setup_distributed("cpu") == torch.device("cpu")
    assert second_of_two_processes == ["gloo"]


def test_more_processes_than_gpus_is_a_clear_error(second_of_two_processes):
    with pytest.raises(ValueError, match="2 processes per machine, but it has 1 GPU"):
        trainer.setup_distributed("auto")
    assert second_of_two_processes == []


def test_a_single_process_joins_no_group(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert trainer.setup_distributed("cpu") is None
