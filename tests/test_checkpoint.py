"""Checkpoints: exact round trip, and a clear error naming the file for every kind of damage."""

import json

import pytest
import torch

from fastdiff.config import DiffusionConfig
from fastdiff.nn.checkpoint import CheckpointError, images_seen_total, load_model, save_model
from fastdiff.nn.unet import UNet


def test_round_trip_is_exact(tmp_path, tiny_config):
    torch.manual_seed(0)
    model = UNet(tiny_config)
    save_model(
        tmp_path / "ckpt",
        model.state_dict(),
        tiny_config,
        DiffusionConfig(num_timesteps=123),
        training={"epochs": 3},
        dtype=torch.float32,
    )
    loaded, diffusion, training = load_model(tmp_path / "ckpt")
    assert loaded.config == tiny_config and diffusion.num_timesteps == 123 and training == {"epochs": 3}
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_fp16_weights_load_into_fp32(tiny_checkpoint):
    model, _, _ = load_model(tiny_checkpoint)
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_missing_folder_and_files(tmp_path, tiny_checkpoint):
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "nowhere")
    (tiny_checkpoint / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"model\.safetensors: file not found"):
        load_model(tiny_checkpoint)


def test_truncated_weights(tiny_checkpoint):
    path = tiny_checkpoint / "model.safetensors"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=r"model\.safetensors: not a readable safetensors file"):
        load_model(tiny_checkpoint)


def test_corrupt_config(tiny_checkpoint):
    (tiny_checkpoint / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"config\.json: not a valid FastDiff config"):
        load_model(tiny_checkpoint)


def test_weights_that_do_not_match_the_config(tiny_checkpoint):
    config = json.loads((tiny_checkpoint / "config.json").read_text())
    config["model"]["attention"] = True
    (tiny_checkpoint / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"model\.safetensors: weights do not match.*missing.*attention"):
        load_model(tiny_checkpoint)
    config["model"]["attention"], config["model"]["n_feat"] = False, 16
    (tiny_checkpoint / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="wrong shape"):
        load_model(tiny_checkpoint)


def test_loading_never_unpickles(tiny_checkpoint, monkeypatch):
    import pickle

    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("unpickled"))
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("unpickled"))
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load"))
    load_model(tiny_checkpoint)


def test_images_seen_count_the_warm_start_when_it_is_known():
    assert images_seen_total({"images_seen": 10, "warm_start": {"checkpoint": "a", "images_seen": 5}}) == 15
    assert images_seen_total({"images_seen": 10, "warm_start": {"checkpoint": "a", "images_seen": None}}) == 10
    assert images_seen_total({"images_seen": 10}) == 10 and images_seen_total({}) is None
